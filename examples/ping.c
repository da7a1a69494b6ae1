/* ping: measures the I/O round trip to the system VM: N no-op requests (default 1000), timed
 * with the guest's cycle counter. Input "N" or "N GAP_US": with a gap, the guest computes GAP_US
 * microseconds between requests, long enough for the system VM to stop polling, so every request
 * goes through the doorbell. Returns the mean and the best round trip in nanoseconds. */
#include <nanvix.h>

int nx_main(const char *input, size_t len)
{
    long n = len ? nx_atol(input, len) : 1000, gap_us = 0;
    for (size_t i = 0; i < len; i++)
        if (input[i] == ' ') {
            gap_us = nx_atol(input + i + 1, len - i - 1);
            break;
        }
    uint64_t best = ~0ull, total = 0;
    for (long i = 0; i < n; i++) {
        if (gap_us)
            for (uint64_t until = nx_uptime_ns() + (uint64_t)gap_us * 1000; nx_uptime_ns() < until;)
                ;
        uint64_t t0 = nx_uptime_ns();
        long r = nx_request(NX_OP_NOP, 0, 0, 0, 0, 0, 0, 0, 0, 0);
        uint64_t dt = nx_uptime_ns() - t0;
        if (r < 0) {
            nx_result_printf("nop failed: %ld", r);
            return 1;
        }
        total += dt;
        if (dt < best)
            best = dt;
    }
    nx_result_printf("{\"requests\": %ld, \"mean_ns\": %lu, \"best_ns\": %lu}", n, n ? total / n : 0, best);
    return 0;
}
