/* Entry and context switch of the nanvix microkernel. Everything runs at CPL3: no privileged
 * instruction here or anywhere in the guest. The host points rip at _start, which calls
 * NX_ENTRY: the SDK's nx_kernel_main, or the Linux-ABI layer's nx_linux_main. */
#ifndef NX_ENTRY
#define NX_ENTRY nx_kernel_main
#endif
    .section .text.start, "ax"
    .globl _start
_start:
    lea     nx_boot_stack_top(%rip), %rsp
    xor     %ebp, %ebp
    call    NX_ENTRY
1:  jmp     1b

    .text
/* void nx_switch(uint64_t *save_rsp, uint64_t new_rsp): save the callee-saved registers on the
 * current stack, store its rsp, load the other thread's and restore its registers. The SysV ABI
 * makes every vector register caller-saved, so a cooperative switch needs nothing more. */
    .globl nx_switch
nx_switch:
    push    %rbp
    push    %rbx
    push    %r12
    push    %r13
    push    %r14
    push    %r15
    mov     %rsp, (%rdi)
    mov     %rsi, %rsp
    pop     %r15
    pop     %r14
    pop     %r13
    pop     %r12
    pop     %rbx
    pop     %rbp
    ret

/* First frame of a new thread: r12 holds its struct thread pointer. */
    .globl nx_thread_trampoline
nx_thread_trampoline:
    mov     %r12, %rdi
    call    nx_thread_start
1:  jmp     1b

    .bss
    .balign 16
nx_boot_stack:
    .skip   65536
nx_boot_stack_top:
    .section .note.GNU-stack, "", @progbits
