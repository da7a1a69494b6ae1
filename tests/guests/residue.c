/* residue: looks for anything a previous invocation in the same VM could have left behind.
 *   input "dirty": write every piece of state a guest can write from CPL3 (general and SSE
 *   registers, MXCSR, the x87 control word, flags, globals, heap, stack below the stack pointer,
 *   the info block's result area beyond this result, the channel's data area) and exit;
 *   input "stuck": the same, then spin until the host stops it at its deadline;
 *   input "look": report a digest of all of it, as this invocation found it at its start. */
#include <nanvix.h>

static unsigned long counter = 0x1234;
static unsigned char scratch[8192];

static unsigned long fnv(unsigned long h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

int nx_main(const char *input, size_t len)
{
    /* The registers at entry: what the microkernel hands over plus what it left (it restores
     * nothing on its own: whatever is there came from the VM's state). */
    unsigned char xmm[16 * 16];
    unsigned int mxcsr;
    unsigned short fcw;
    unsigned long flags;
    __asm__ volatile(
        "movdqu %%xmm0, 0(%0)\n movdqu %%xmm1, 16(%0)\n movdqu %%xmm2, 32(%0)\n movdqu %%xmm3, 48(%0)\n"
        "movdqu %%xmm4, 64(%0)\n movdqu %%xmm5, 80(%0)\n movdqu %%xmm6, 96(%0)\n movdqu %%xmm7, 112(%0)\n"
        "movdqu %%xmm8, 128(%0)\n movdqu %%xmm9, 144(%0)\n movdqu %%xmm10, 160(%0)\n movdqu %%xmm11, 176(%0)\n"
        "movdqu %%xmm12, 192(%0)\n movdqu %%xmm13, 208(%0)\n movdqu %%xmm14, 224(%0)\n movdqu %%xmm15, 240(%0)\n"
        :: "r"(xmm) : "memory");
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    __asm__ volatile("fnstcw %0" : "=m"(fcw));
    __asm__ volatile("pushfq; popq %0" : "=r"(flags));
    unsigned char *heap = malloc(4096);
    volatile unsigned char below[2048]; /* the stack beneath this frame, uninitialised */
    unsigned char *data = (unsigned char *)(NX_GPA_CHANNEL + NX_DATA_OFF);
    struct nx_info *info = (struct nx_info *)NX_GPA_INFO;

    int stuck = len == 5 && !memcmp(input, "stuck", 5);
    if (stuck || (len == 5 && !memcmp(input, "dirty", 5))) {
        for (size_t i = 0; i < sizeof below; i++)
            below[i] = 0xa5;
        memset(heap, 0x5a, 4096);
        memset(scratch, 0x77, sizeof scratch);
        counter = 0xdeadbeef;
        memset(info->result, 0xee, sizeof info->result);
        memset(data, 0x33, 1 << 20);
        unsigned int bad_mxcsr = 0x1f80 ^ 0x6000; /* round toward zero */
        unsigned short bad_fcw = 0x037f ^ 0x0c00;
        __asm__ volatile("ldmxcsr %0" :: "m"(bad_mxcsr));
        __asm__ volatile("fldcw %0" :: "m"(bad_fcw));
        __asm__ volatile("pcmpeqd %%xmm0, %%xmm0\n pcmpeqd %%xmm7, %%xmm7\n pcmpeqd %%xmm15, %%xmm15" ::: "xmm0", "xmm7", "xmm15");
        __asm__ volatile("std"); /* the direction flag: exit with it set */
        while (stuck)
            __asm__ volatile("pause");
        nx_hypercall(NX_HC_EXIT, 0, 0);
    }
    unsigned long h = 0xcbf29ce484222325ull;
    h = fnv(h, xmm, sizeof xmm);
    h = fnv(h, &mxcsr, sizeof mxcsr);
    h = fnv(h, &fcw, sizeof fcw);
    unsigned long f = flags & 0xcd5; /* CF PF AF ZF SF DF OF */
    h = fnv(h, &f, sizeof f);
    h = fnv(h, heap, 4096);
    h = fnv(h, (const void *)below, sizeof below);
    h = fnv(h, scratch, sizeof scratch);
    h = fnv(h, &counter, sizeof counter);
    h = fnv(h, info->result, sizeof info->result);
    h = fnv(h, data, 1 << 20);
    nx_result_printf("%lx mxcsr=%x fcw=%x df=%d counter=%lx", h, mxcsr, fcw, (int)((flags >> 10) & 1), counter);
    return 0;
}
