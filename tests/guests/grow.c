/* grow: allocates more than the user VM's RAM (so the microkernel asks the host for pages with
 * NX_HC_GROW), touches every byte, then, if the input is "wait", polls the key "grow-go" until it
 * exists (so a test can look at the runtime's state while it holds the pages). */
#include <nanvix.h>

int nx_main(const char *input, size_t len)
{
    size_t n = 24u << 20; /* 24 MiB: three times the default RAM */
    unsigned char *p = malloc(n);
    if (!p) {
        nx_result_printf("malloc failed");
        return 1;
    }
    for (size_t i = 0; i < n; i += 4096)
        p[i] = (unsigned char)(i >> 12);
    unsigned long sum = 0;
    for (size_t i = 0; i < n; i += 4096)
        sum += p[i];
    if (len == 4 && !memcmp(input, "wait", 4)) {
        char b[8];
        while (nx_kv_get("grow-go", b, sizeof b) < 0)
            nx_yield();
    }
    nx_result_printf("addr=%lx sum=%lu", (unsigned long)p, sum);
    return 0;
}
