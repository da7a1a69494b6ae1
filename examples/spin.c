/* spin: pure computation with no I/O, to show that guest code runs at native speed (CPL3). The
 * input is the iteration count (default 10^7). */
#include <nanvix.h>

int nx_main(const char *input, size_t len)
{
    long n = len ? nx_atol(input, len) : 10000000;
    uint64_t x = 88172645463325252ull, t0 = nx_cycles();
    for (long i = 0; i < n; i++) { /* xorshift: the compiler cannot fold it away */
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    uint64_t ns = nx_uptime_ns(), cycles = nx_cycles() - t0;
    nx_result_printf("{\"iterations\": %ld, \"checksum\": %lu, \"cycles\": %lu, \"guest_ns\": %lu}",
                     n, x, cycles, ns);
    return 0;
}
