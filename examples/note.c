/* note: appends its input as a line to the tenant file notes.txt; returns the file's new size. */
#include <nanvix.h>

int nx_main(const char *input, size_t len)
{
    long r = nx_file_append("notes.txt", input, len);
    if (r >= 0)
        r = nx_file_append("notes.txt", "\n", 1);
    if (r < 0) {
        nx_result_printf("append failed: %ld", r);
        return 1;
    }
    nx_result_printf("%ld", nx_file_size("notes.txt"));
    return 0;
}
