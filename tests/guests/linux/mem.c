/* Memory system calls, many of them: malloc/free (musl's mallocng: brk and mmap underneath),
 * mmap/munmap, mremap, madvise, brk. None may leave the guest. Prints "ok <checksum>". */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(void)
{
    unsigned long sum = 0, seed = 12345;
    void *keep[256] = {0};
    for (int i = 0; i < 20000; i++) {
        seed = seed * 6364136223846793005ul + 1442695040888963407ul;
        int k = (int)(seed >> 56);
        size_t n = 1 + (seed >> 20) % (i % 7 == 0 ? 200000 : 2000);
        free(keep[k]);
        keep[k] = malloc(n);
        memset(keep[k], k, n);
        sum += ((unsigned char *)keep[k])[n - 1];
    }
    for (int i = 0; i < 2000; i++) {
        char *p = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED || p[100] != 0) {
            printf("bad mmap %d\n", i);
            return 1;
        }
        p[100] = 1;
        p = mremap(p, 65536, 3 * 65536, MREMAP_MAYMOVE);
        if (p == MAP_FAILED || p[100] != 1 || p[150000] != 0) {
            printf("bad mremap %d\n", i);
            return 1;
        }
        madvise(p, 4096, MADV_DONTNEED);
        if (p[100] != 0) {
            printf("bad madvise %d\n", i);
            return 1;
        }
        munmap(p, 3 * 65536);
    }
    char *b0 = sbrk(0);
    if (brk(b0 + 65536) == 0) {
        b0[65535] = 1;
        brk(b0);
    }
    for (int k = 0; k < 256; k++)
        free(keep[k]);
    printf("ok %lu\n", sum);
    return 0;
}
