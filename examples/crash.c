/* crash: dereferences a null pointer. Page 0 is not mapped and the microkernel has no fault
 * handler, so the user VM triple-faults: the host reports status "crashed" and nothing else
 * (its system VM, other user VMs, other tenants) notices. */
#include <nanvix.h>

int nx_main(const char *input, size_t len)
{
    nx_printf("about to crash");
    return *(volatile int *)0;
}
