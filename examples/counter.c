/* counter: increments the tenant's "counter" key (atomically, in the system VM's durable store)
 * and returns the new value. The count survives invocations and system VM restarts. */
#include <nanvix.h>

int nx_main(const char *input, size_t len)
{
    const char *key = "counter";
    char name[64];
    if (len > 0 && len < sizeof name) { /* an optional counter name */
        memcpy(name, input, len);
        name[len] = 0;
        key = name;
    }
    long v = nx_kv_add(key, 1);
    if (v < 0) {
        nx_result_printf("kv_add failed: %ld", v);
        return 1;
    }
    nx_result_printf("%ld", v);
    return 0;
}
