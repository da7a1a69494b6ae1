/* badport: an `out` to a port the TSS I/O bitmap forbids: #GP with no handler -> "crashed". */
#include <nanvix.h>

int nx_main(const char *input, size_t len)
{
    __asm__ volatile("outb %%al, %0" ::"i"(0x80), "a"(0));
    return 0;
}
