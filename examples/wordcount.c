/* wordcount: reads a tenant file (default notes.txt, or the path given as input) and returns
 * its line, word and byte counts as JSON. The file is read in chunks through the channel. */
#include <nanvix.h>

int nx_main(const char *input, size_t len)
{
    char path[256] = "notes.txt";
    if (len > 0 && len < sizeof path) {
        memcpy(path, input, len);
        path[len] = 0;
    }
    long size = nx_file_size(path);
    if (size < 0) {
        nx_result_printf("{\"path\": \"%s\", \"error\": %ld}", path, size);
        return 1;
    }
    char *buf = malloc(65536);
    long lines = 0, words = 0, bytes = 0;
    int in_word = 0;
    for (uint64_t off = 0;;) {
        long n = nx_file_read(path, buf, 65536, off);
        if (n < 0) {
            nx_result_printf("{\"path\": \"%s\", \"error\": %ld}", path, n);
            return 1;
        }
        if (n == 0)
            break;
        for (long i = 0; i < n; i++) {
            char c = buf[i];
            int space = c == ' ' || c == '\n' || c == '\t' || c == '\r';
            lines += c == '\n';
            words += !space && !in_word;
            in_word = !space;
        }
        bytes += n;
        off += (uint64_t)n;
    }
    free(buf);
    nx_result_printf("{\"path\": \"%s\", \"lines\": %ld, \"words\": %ld, \"bytes\": %ld}", path, lines, words, bytes);
    return 0;
}
