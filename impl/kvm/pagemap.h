/* Page-level resets of guest memory that keep its working set mapped.
 *
 * A user VM's memory is a MAP_PRIVATE (copy-on-write) mapping of its sealed snapshot. Dropping the
 * whole mapping to revert it (MADV_DONTNEED) is simple but costly on this host: KVM's shadow page
 * tables of it go too, and the next run faults every page it touches in again, host and shadow
 * (~15 pages, ~200 us for the smallest function here). Instead the kernel's page map tells which
 * pages the mapping copied (present, not a page of the file: only a write makes such a page), and
 * only those are copied back from the snapshot; pages still the file's are the snapshot already.
 * A channel page, a shared mapping, is scrubbed the same way: only its pages in memory (mincore)
 * can hold anything but zeros.
 */
#ifndef NX_PAGEMAP_H
#define NX_PAGEMAP_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define NX_PM_PRESENT (1ull << 63)
#define NX_PM_SWAPPED (1ull << 62)
#define NX_PM_FILE (1ull << 61) /* a file page or shared anonymous memory */
#define NX_PM_CHUNK 512         /* entries read per pread */

static int nx_pagemap_fd = -1;

static int nx_pagemap(void)
{
    int fd = __atomic_load_n(&nx_pagemap_fd, __ATOMIC_ACQUIRE);
    if (fd >= 0)
        return fd;
    fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int expected = -1;
    if (!__atomic_compare_exchange_n(&nx_pagemap_fd, &expected, fd, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        close(fd); /* another thread opened it first */
        fd = expected;
    }
    return fd;
}

/* dst: a private mapping of a file, src: a mapping of the same file, size bytes (4 KiB pages).
 * Every page of dst that is a private copy is made equal to src again; a swapped-out copy is
 * dropped (it reads as the file again). Returns the pages restored, or -errno. */
static int64_t nx_restore_pages(char *dst, const char *src, uint64_t size)
{
    uint64_t entries[NX_PM_CHUNK];
    uint64_t npages = size / 4096, first = (uint64_t)(uintptr_t)dst / 4096, done = 0;
    int64_t restored = 0;
    int fd = nx_pagemap();
    if (fd < 0)
        return fd;
    while (done < npages) {
        uint64_t n = npages - done < NX_PM_CHUNK ? npages - done : NX_PM_CHUNK;
        ssize_t got = pread(fd, entries, n * 8, (off_t)((first + done) * 8));
        if (got < 0)
            return -errno;
        if ((uint64_t)got != n * 8)
            return -EIO;
        for (uint64_t i = 0; i < n; i++) {
            uint64_t e = entries[i], off = (done + i) * 4096;
            if (e & NX_PM_SWAPPED) {
                if (madvise(dst + off, 4096, MADV_DONTNEED) != 0)
                    return -errno;
                restored++;
            } else if ((e & NX_PM_PRESENT) && !(e & NX_PM_FILE)) {
                memcpy(dst + off, src + off, 4096);
                restored++;
            }
        }
        done += n;
    }
    return restored;
}

/* base: a shared file mapping, size bytes. Zeroes its pages in memory. Returns them, or -errno. */
static int64_t nx_zero_resident(char *base, uint64_t size)
{
    unsigned char vec[NX_PM_CHUNK];
    uint64_t npages = size / 4096, done = 0;
    int64_t zeroed = 0;
    while (done < npages) {
        uint64_t n = npages - done < NX_PM_CHUNK ? npages - done : NX_PM_CHUNK;
        if (mincore(base + done * 4096, n * 4096, vec) != 0)
            return -errno;
        for (uint64_t i = 0; i < n; i++)
            if (vec[i] & 1) {
                memset(base + (done + i) * 4096, 0, 4096);
                zeroed++;
            }
        done += n;
    }
    return zeroed;
}

#endif
