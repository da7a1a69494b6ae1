/* A noisy neighbour for `nanvix bench`: a doorbell storm. Rings its channel's doorbell (an
 * ioeventfd: no exit, but a wake-up of its tenant's system VM) with nothing posted, forever. */
#include <nanvix.h>

int nx_main(const char *input, size_t len)
{
    for (;;)
        __asm__ volatile("outb %%al, %0" ::"i"(NX_PORT_DOORBELL), "a"(0));
}
