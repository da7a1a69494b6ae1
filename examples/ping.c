/* ping: measures the I/O round trip to the system VM: N no-op requests (default 1000), timed
 * with the guest's cycle counter. Returns the mean and the best round trip in nanoseconds. */
#include <nanvix.h>

int nx_main(const char *input, size_t len)
{
    long n = len ? nx_atol(input, len) : 1000;
    uint64_t best = ~0ull, t_start = nx_uptime_ns();
    for (long i = 0; i < n; i++) {
        uint64_t t0 = nx_uptime_ns();
        long r = nx_request(NX_OP_NOP, 0, 0, 0, 0, 0, 0, 0, 0, 0);
        uint64_t dt = nx_uptime_ns() - t0;
        if (r < 0) {
            nx_result_printf("nop failed: %ld", r);
            return 1;
        }
        if (dt < best)
            best = dt;
    }
    uint64_t total = nx_uptime_ns() - t_start;
    nx_result_printf("{\"requests\": %ld, \"mean_ns\": %lu, \"best_ns\": %lu}", n, n ? total / n : 0, best);
    return 0;
}
