/* echo: returns its input unchanged. */
#include <nanvix.h>

int nx_main(const char *input, size_t len)
{
    nx_result(input, len);
    return 0;
}
