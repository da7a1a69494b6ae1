/* supervisor: reads the page tables (supervisor-only, U=0) from CPL3: a page fault with no
 * handler, so the user VM triple-faults and the host reports "crashed". */
#include <nanvix.h>

int nx_main(const char *input, size_t len)
{
    nx_printf("reading the PML4");
    return (int)*(volatile long *)0x1000;
}
