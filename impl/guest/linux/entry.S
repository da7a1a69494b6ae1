/* The Linux-ABI layer's ways in and out (CPL3, no privileged instruction).
 *
 * A patched musl makes a system call with `call *NX_GPA_SYSCALL_VEC`; a binary rewritten at image
 * build time (zpoline) with `call *%rax`, which slides down the nop sled the host put in page 0 to
 * a jump through the same vector. Either way we arrive here as `syscall` would leave things: the
 * number in rax, the arguments in rdi, rsi, rdx, r10, r8, r9, and (unlike `syscall`) the return
 * address on the caller's stack. Like the kernel, we preserve every register but rax (the result),
 * rcx and r11. The C handler is built with -mgeneral-regs-only, so vector state is untouched. */
    .text
    .globl nx_linux_entry
nx_linux_entry:
    push    %r9             /* struct nx_frame, from the top: ret, r9 ... r15 */
    push    %r8
    push    %r10
    push    %rdx
    push    %rsi
    push    %rdi
    push    %rax
    push    %rbp
    push    %rbx
    push    %r12
    push    %r13
    push    %r14
    push    %r15
    mov     %rsp, %rdi
    mov     %rsp, %rbx      /* (callee-saved: survives the call) */
    and     $-16, %rsp      /* a syscall site need not keep the stack aligned */
    cld
    call    nx_linux_syscall
    mov     %rbx, %rsp
restore:                    /* the frame back into the registers; rax is the result */
    pop     %r15
    pop     %r14
    pop     %r13
    pop     %r12
    pop     %rbx
    pop     %rbp
    add     $8, %rsp        /* the number */
    pop     %rdi
    pop     %rsi
    pop     %rdx
    pop     %r10
    pop     %r8
    pop     %r9
    ret

/* The first code of a thread made by clone(): nx_switch returned here, on the child's stack,
 * where clone laid a copy of the parent's frame; restore it and return to the caller of the
 * system call with 0, at the stack pointer clone was given. */
    .globl nx_linux_child
nx_linux_child:
    xor     %eax, %eax
    jmp     restore

/* void nx_linux_enter(uint64_t entry, uint64_t sp): start the program at its ELF entry on its
 * initial stack (argc, argv, envp, auxv), with the registers a Linux kernel leaves: zero (rdx = 0:
 * no function for atexit). */
    .globl nx_linux_enter
nx_linux_enter:
    mov     %rsi, %rsp
    mov     %rdi, %r11
    xor     %eax, %eax
    xor     %ebx, %ebx
    xor     %ecx, %ecx
    xor     %edx, %edx
    xor     %esi, %esi
    xor     %edi, %edi
    xor     %ebp, %ebp
    xor     %r8d, %r8d
    xor     %r9d, %r9d
    xor     %r10d, %r10d
    xor     %r12d, %r12d
    xor     %r13d, %r13d
    xor     %r14d, %r14d
    xor     %r15d, %r15d
    jmp     *%r11
    .section .note.GNU-stack, "", @progbits
