/* threads: four threads each append to a file and bump a key; while one waits for the system
 * VM, the others run (cooperative threads on the one vCPU). Returns what the main thread saw. */
#include <nanvix.h>

static void *worker(void *arg)
{
    long id = (long)arg;
    char line[32];
    int n = nx_snprintf(line, sizeof line, "thread %ld\n", id);
    for (int i = 0; i < 5; i++) {
        nx_file_append("threads.log", line, (size_t)n);
        nx_kv_add("threads", 1);
        nx_yield();
    }
    return (void *)(id * 10);
}

int nx_main(const char *input, size_t len)
{
    nx_file_delete("threads.log");
    long before = nx_kv_add("threads", 0);
    nx_thread_t t[4];
    for (long i = 0; i < 4; i++)
        if (nx_thread_create(&t[i], worker, (void *)i) != 0)
            return 1;
    long sum = 0;
    for (int i = 0; i < 4; i++) {
        void *r;
        nx_thread_join(t[i], &r);
        sum += (long)r;
    }
    long after = nx_kv_add("threads", 0);
    nx_result_printf("{\"joined_sum\": %ld, \"kv_delta\": %ld, \"log_bytes\": %ld}", sum, after - before,
                     nx_file_size("threads.log"));
    return 0;
}
