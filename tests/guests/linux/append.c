/* O_APPEND through the Linux-ABI layer: another descriptor moves the file's end, then this one
 * appends N times (N: the input); each append must land at the end and leave the descriptor's
 * offset there. Prints "first <offset> last <offset> size <bytes>". */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int main(void)
{
    char in[16] = {0};
    int n = (int)read(0, in, sizeof in - 1) > 0 ? atoi(in) : 1;
    int w = open("ap.txt", O_CREAT | O_TRUNC | O_WRONLY, 0600);
    int a = open("ap.txt", O_WRONLY | O_APPEND);
    if (w < 0 || a < 0 || write(w, "12345", 5) != 5 || write(w, "XYZ", 3) != 3)
        return 1;
    long first = -1;
    for (int i = 0; i < n; i++) {
        if (write(a, "ab", 2) != 2)
            return 2;
        if (i == 0)
            first = (long)lseek(a, 0, SEEK_CUR);
    }
    struct stat st;
    if (fstat(a, &st) != 0)
        return 3;
    printf("first %ld last %ld size %lld\n", first, (long)lseek(a, 0, SEEK_CUR), (long long)st.st_size);
    return 0;
}
