/* ping: measures the I/O round trip to the system VM: N no-op requests (default 1000), timed
 * with the guest's cycle counter. Input "N" or "N GAP_US": with a gap, the guest computes GAP_US
 * microseconds between requests, long enough for the system VM to stop polling, so every request
 * goes through the doorbell. Returns the median, the 99th percentile (over the first 8192
 * requests), the mean and the best round trip in nanoseconds. */
#include <nanvix.h>

#define KEEP 8192
static uint64_t samples[KEEP];

static void sort(uint64_t *a, long n) /* heapsort: no libc qsort in the guest */
{
    for (long end = n; end > 1;) {
        for (long i = end / 2 - 1; i >= 0 && end == n; i--)
            for (long r = i, c; (c = 2 * r + 1) < end; r = c) {
                if (c + 1 < end && a[c + 1] > a[c])
                    c++;
                if (a[r] >= a[c])
                    break;
                uint64_t t = a[r]; a[r] = a[c]; a[c] = t;
            }
        end--;
        uint64_t t = a[0]; a[0] = a[end]; a[end] = t;
        for (long r = 0, c; (c = 2 * r + 1) < end; r = c) {
            if (c + 1 < end && a[c + 1] > a[c])
                c++;
            if (a[r] >= a[c])
                break;
            t = a[r]; a[r] = a[c]; a[c] = t;
        }
    }
}

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
        if (i < KEEP)
            samples[i] = dt;
    }
    long kept = n < KEEP ? n : KEEP;
    sort(samples, kept);
    uint64_t p50 = kept ? samples[kept / 2] : 0, p99 = kept ? samples[(kept * 99) / 100 < kept ? (kept * 99) / 100 : kept - 1] : 0;
    nx_result_printf("{\"requests\": %ld, \"p50_ns\": %lu, \"p99_ns\": %lu, \"mean_ns\": %lu, \"best_ns\": %lu, \"sampled\": %ld}",
                     n, p50, p99, n ? total / n : 0, best, kept);
    return 0;
}
