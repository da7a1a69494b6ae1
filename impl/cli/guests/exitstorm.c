/* A noisy neighbour for `nanvix bench`: an exit storm. Asks the host for zero pages (a refused,
 * cheap hypercall) as fast as it can, so its vCPU exits to the VMM over and over. */
#include <nanvix.h>

int nx_main(const char *input, size_t len)
{
    for (;;)
        nx_hypercall(NX_HC_GROW, 0, 0);
}
