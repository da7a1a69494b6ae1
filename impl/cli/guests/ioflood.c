/* A noisy neighbour for `nanvix bench`: an I/O flood. Keeps its channel full of requests (64 in
 * flight from cooperative threads: no-ops and appends to a file in its tenant's tree), forever. */
#include <nanvix.h>

static void *flood(void *arg)
{
    char line[64];
    int n = nx_snprintf(line, sizeof line, "flood %d\n", (int)(long)arg);
    for (long i = 0;; i++) {
        if (i % 8 == 0)
            nx_file_append("flood.log", line, (size_t)n);
        else
            nx_request(NX_OP_NOP, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    }
    return 0;
}

int nx_main(const char *input, size_t len)
{
    nx_thread_t t;
    for (long i = 1; i < 16; i++)
        nx_thread_create(&t, flood, (void *)i);
    flood(0);
    return 0;
}
