/* The quiet tenant of `nanvix bench`'s fairness section: one key-value read through its system VM
 * (a real request: the ring, the system VM's Python and SQLite), the value as the result. With an
 * input, it first stores it under the key. */
#include <nanvix.h>

int nx_main(const char *input, size_t len)
{
    char v[64];
    if (len && nx_kv_put("k", input, len) < 0)
        return 1;
    long n = nx_kv_get("k", v, sizeof v);
    if (n < 0)
        return 1;
    nx_result(v, (size_t)n);
    return 0;
}
