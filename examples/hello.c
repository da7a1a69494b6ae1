/* hello: logs a greeting through the system VM and returns one. */
#include <nanvix.h>

int nx_main(const char *input, size_t len)
{
    nx_printf("hello from a nanvix user VM (input %zu bytes)", len);
    nx_result_printf("Hello, %s!", len ? input : "world");
    return 0;
}
