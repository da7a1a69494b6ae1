/* Page-level resets of guest memory that keep its working set mapped.
 *
 * A user VM's memory is a MAP_PRIVATE (copy-on-write) mapping of its sealed snapshot. Dropping the
 * whole mapping to revert it (MADV_DONTNEED) is simple but costly on this host: KVM's shadow page
 * tables of it go too, and the next run faults every page it touches in again, host and shadow
 * (~15 pages, ~200 us for the smallest function here). Instead the kernel's page map tells which
 * pages the mapping copied (present, not a page of the file: only a write makes such a page), and
 * only those are copied back from the snapshot; pages still the file's are the snapshot already.
 * A channel page, a shared mapping, is scrubbed the same way: only its pages in memory (the
 * file's data extents) can hold anything but zeros.
 */
#ifndef NX_PAGEMAP_H
#define NX_PAGEMAP_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
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

/* PAGEMAP_SCAN (Linux 6.7): the kernel walks the range and returns only the pages in the asked
 * categories, as ranges; ~100x cheaper than reading one pagemap entry per page. The uapi headers
 * here predate it, so its (stable) ABI is spelled out. */
struct nx_page_region {
    uint64_t start, end, categories;
};
struct nx_pm_scan_arg {
    uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
    uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define NX_PAGEMAP_SCAN _IOWR('f', 16, struct nx_pm_scan_arg)
#define NX_PAGE_IS_FILE (1ull << 2)
#define NX_PAGE_IS_PRESENT (1ull << 3)
#define NX_PAGE_IS_SWAPPED (1ull << 4)
#define NX_SCAN_REGIONS 64

static int nx_scan_works = 1; /* cleared the first time the kernel refuses PAGEMAP_SCAN */

/* One page of dst made equal to src again (a swapped-out copy is dropped instead). */
static int nx_restore_one(char *dst, const char *src, uint64_t off, int swapped)
{
    if (swapped)
        return madvise(dst + off, 4096, MADV_DONTNEED) == 0 ? 0 : -errno;
    memcpy(dst + off, src + off, 4096);
    return 0;
}

/* The pages that are private copies (present or swapped, and not a page of the file), with
 * PAGEMAP_SCAN. Returns the pages restored, -ENOTTY where the kernel lacks it, or -errno. */
static int64_t nx_restore_scan(int fd, char *dst, const char *src, uint64_t size)
{
    struct nx_page_region regions[NX_SCAN_REGIONS];
    struct nx_pm_scan_arg arg;
    uint64_t start = (uint64_t)(uintptr_t)dst, end = start + size;
    int64_t restored = 0;
    while (start < end) {
        memset(&arg, 0, sizeof arg);
        arg.size = sizeof arg;
        arg.start = start;
        arg.end = end;
        arg.vec = (uint64_t)(uintptr_t)regions;
        arg.vec_len = NX_SCAN_REGIONS;
        arg.category_inverted = NX_PAGE_IS_FILE;
        arg.category_mask = NX_PAGE_IS_FILE;                                  /* not a file page */
        arg.category_anyof_mask = NX_PAGE_IS_PRESENT | NX_PAGE_IS_SWAPPED;  /* and in use */
        arg.return_mask = NX_PAGE_IS_PRESENT | NX_PAGE_IS_SWAPPED;
        long n = ioctl(fd, NX_PAGEMAP_SCAN, &arg);
        if (n < 0)
            return errno == EINVAL || errno == ENOTTY ? -ENOTTY : -errno;
        for (long k = 0; k < n; k++)
            for (uint64_t a = regions[k].start; a < regions[k].end; a += 4096) {
                int r = nx_restore_one(dst, src, a - (uint64_t)(uintptr_t)dst,
                                       !(regions[k].categories & NX_PAGE_IS_PRESENT));
                if (r < 0)
                    return r;
                restored++;
            }
        if (arg.walk_end <= start)
            return -EIO;
        start = arg.walk_end;
    }
    return restored;
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
    if (__atomic_load_n(&nx_scan_works, __ATOMIC_RELAXED)) {
        int64_t r = nx_restore_scan(fd, dst, src, size);
        if (r != -ENOTTY)
            return r;
        __atomic_store_n(&nx_scan_works, 0, __ATOMIC_RELAXED);
    }
    while (done < npages) { /* one pagemap entry per page */
        uint64_t n = npages - done < NX_PM_CHUNK ? npages - done : NX_PM_CHUNK;
        ssize_t got = pread(fd, entries, n * 8, (off_t)((first + done) * 8));
        if (got < 0)
            return -errno;
        if ((uint64_t)got != n * 8)
            return -EIO;
        for (uint64_t i = 0; i < n; i++) {
            uint64_t e = entries[i];
            if ((e & (NX_PM_PRESENT | NX_PM_SWAPPED)) && !(e & NX_PM_FILE)) {
                int r = nx_restore_one(dst, src, (done + i) * 4096, !(e & NX_PM_PRESENT));
                if (r < 0)
                    return r;
                restored++;
            }
        }
        done += n;
    }
    return restored;
}

/* fd: a shmem file, mapped shared at base from file offset off, size bytes. Zeroes the pages in
 * memory: the file's data extents (SEEK_DATA/SEEK_HOLE: a page not in memory is a hole, which
 * reads as zero), so the cost is a few calls per extent, not a look per page. Returns the pages
 * zeroed, or -errno. */
static int64_t nx_zero_resident(int fd, uint64_t off, char *base, uint64_t size)
{
    uint64_t end = off + size, at = off;
    int64_t zeroed = 0;
    while (at < end) {
        off_t d = lseek(fd, (off_t)at, SEEK_DATA);
        if (d < 0)
            return errno == ENXIO ? zeroed : -errno;
        if ((uint64_t)d >= end)
            break;
        off_t h = lseek(fd, d, SEEK_HOLE);
        if (h < 0)
            return -errno;
        uint64_t from = (uint64_t)d & ~4095ull, to = (uint64_t)h < end ? ((uint64_t)h + 4095) & ~4095ull : end;
        if (to > end)
            to = end;
        memset(base + (from - off), 0, to - from);
        zeroed += (int64_t)((to - from) / 4096);
        at = to;
    }
    return zeroed;
}

#endif
