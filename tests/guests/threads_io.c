/* threads_io: eight cooperative threads, each doing several rounds of file and kv I/O (so they
 * block on the channel while the others run) and checking what it reads back. Returns
 * "ok=<threads whose every check passed> sum=<sum of join values>". */
#include <nanvix.h>

#define N 8
#define ROUNDS 4

static void *worker(void *arg)
{
    long id = (long)arg;
    char path[32], key[32], val[64], got[64];
    nx_snprintf(path, sizeof path, "thr/%ld.txt", id);
    nx_snprintf(key, sizeof key, "thr-%ld", id);
    for (int r = 0; r < ROUNDS; r++) {
        int n = nx_snprintf(val, sizeof val, "thread %ld round %d", id, r);
        if (nx_file_write(path, val, (size_t)n, 0) != n)
            return (void *)-1;
        if (nx_kv_put(key, val, (size_t)n) != n)
            return (void *)-2;
        nx_yield();
        long m = nx_file_read(path, got, sizeof got, 0);
        if (m != n || memcmp(got, val, (size_t)n))
            return (void *)-3;
        m = nx_kv_get(key, got, sizeof got);
        if (m != n || memcmp(got, val, (size_t)n))
            return (void *)-4;
        if (nx_kv_add("thr-total", 1) < 0)
            return (void *)-5;
    }
    return (void *)(id + 1);
}

int nx_main(const char *input, size_t len)
{
    nx_thread_t t[N];
    for (long i = 0; i < N; i++)
        if (nx_thread_create(&t[i], worker, (void *)i) != 0)
            return 1;
    long ok = 0, sum = 0;
    for (int i = 0; i < N; i++) {
        void *r = 0;
        if (nx_thread_join(t[i], &r) != 0)
            return 2;
        sum += (long)r;
        ok += (long)r > 0;
    }
    nx_result_printf("ok=%ld sum=%ld", ok, sum);
    return 0;
}
