/* park: waits for a completion with nothing in flight (NX_HC_WAIT in a loop): it holds no core
 * and nothing will ever wake it, so only its deadline ends it. */
#include <nanvix.h>

int nx_main(const char *input, size_t len)
{
    for (;;)
        nx_hypercall(NX_HC_WAIT, 0, 0);
}
