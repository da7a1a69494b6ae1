/* loop: computes forever. The host kicks the vCPU out of KVM_RUN when the invocation's time
 * budget is spent and reports status "timeout". */
#include <nanvix.h>

int nx_main(const char *input, size_t len)
{
    for (volatile unsigned long i = 0;; i++)
        ;
}
