/* Memory system calls only: malloc/free (musl's mallocng on brk and mmap), mmap, mremap, munmap,
 * madvise. The bench counts how many of them left the VM (the target: none). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

int main(void)
{
    void *keep[64] = {0};
    unsigned long seed = 7;
    for (int i = 0; i < 4000; i++) {
        seed = seed * 6364136223846793005ul + 1442695040888963407ul;
        int k = (int)(seed >> 58);
        free(keep[k]);
        keep[k] = malloc(1 + (seed >> 24) % (i % 5 ? 3000 : 150000));
    }
    for (int i = 0; i < 500; i++) {
        char *p = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        p = mremap(p, 1 << 16, 1 << 18, MREMAP_MAYMOVE);
        madvise(p, 4096, MADV_DONTNEED);
        munmap(p, 1 << 18);
    }
    printf("ok");
    return 0;
}
