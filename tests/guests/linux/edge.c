/* The Linux-ABI layer's edge cases: bad pointers and lengths, unsupported calls. Each line is
 * "name result errno"; the program goes on after every one of them and ends with "alive". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "nanvix_abi.h"
#include "nanvix_linux.h"

#define CHECK(name, expr) do { errno = 0; long r_ = (long)(expr); \
    printf("%s %ld %d\n", name, r_, r_ < 0 ? errno : 0); } while (0)

int main(void)
{
    char buf[64];
    struct timespec ts = {0, 2000000000L};
    struct iovec bad_iov[2] = {{buf, 8}, {(void *)0x7fffffff0000ull, 8}};
    uint32_t word = 5;
    CHECK("read_null", syscall(SYS_read, 0, NULL, 10));
    CHECK("read_low", syscall(SYS_read, 0, (void *)1, 10));
    CHECK("write_far", syscall(SYS_write, 1, (void *)0xdead00000000ull, 5));
    CHECK("write_negative_len", syscall(SYS_write, 1, buf, (size_t)-1));
    CHECK("read_bad_fd", syscall(SYS_read, 99, buf, 1));
    CHECK("read_huge_fd", syscall(SYS_read, 1L << 40, buf, 1));
    CHECK("open_null_path", syscall(SYS_open, NULL, O_RDONLY));
    CHECK("open_far_path", syscall(SYS_open, (void *)0xdead00000000ull, O_RDONLY));
    CHECK("clock_null", syscall(SYS_clock_gettime, CLOCK_REALTIME, NULL));
    CHECK("clock_bad_id", syscall(SYS_clock_gettime, 42, &ts));
    CHECK("nanosleep_bad_ns", syscall(SYS_nanosleep, &ts, NULL));
    CHECK("mmap_zero_len", (long)syscall(SYS_mmap, NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    CHECK("mmap_huge", (long)syscall(SYS_mmap, NULL, 1ull << 45, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    CHECK("mmap_too_much", (long)syscall(SYS_mmap, NULL, 1ull << 36, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    CHECK("munmap_unaligned", syscall(SYS_munmap, (void *)0x1001, 4096));
    CHECK("munmap_huge", syscall(SYS_munmap, (void *)0x800000, 1ull << 50));
    CHECK("madvise_huge", syscall(SYS_madvise, (void *)0x800000, 1ull << 50, MADV_DONTNEED));
    CHECK("brk_huge", syscall(SYS_brk, 1ull << 50) == syscall(SYS_brk, 0) ? 0 : -1);
    CHECK("mremap_not_mapped", (long)syscall(SYS_mremap, (void *)0x7000000ull, 4096, 8192, 0, 0));
    CHECK("lseek_negative", syscall(SYS_lseek, 0, -5L, SEEK_SET));
    CHECK("lseek_log", syscall(SYS_lseek, 2, 0, SEEK_CUR));
    CHECK("futex_null", syscall(SYS_futex, NULL, 0, 0, NULL, NULL, 0));
    CHECK("futex_value_changed", syscall(SYS_futex, &word, 0, 6, NULL, NULL, 0));
    CHECK("writev_negative_count", syscall(SYS_writev, 2, bad_iov, -1));
    CHECK("writev_bad_buffer", syscall(SYS_writev, 2, bad_iov, 2));
    CHECK("getdents_on_stdin", syscall(SYS_getdents64, 0, buf, sizeof buf));
    CHECK("getcwd_small", syscall(SYS_getcwd, buf, 1));
    CHECK("socket", syscall(SYS_socket, 2, 1, 0));
    CHECK("fork", syscall(SYS_fork));
    CHECK("execve", syscall(SYS_execve, "/bin/sh", NULL, NULL));
    CHECK("pipe", syscall(SYS_pipe, buf));
    CHECK("symlink", syscall(SYS_symlink, "/etc/passwd", "link"));
    CHECK("unknown_999", syscall(999));
    struct nx_sys_request fr = {.opcode = NX_OP_FILE_READ, .name = "f", .name_len = 1};
    CHECK("request_file_opcode", syscall(NX_SYS_REQUEST, &fr));
    CHECK("request_bad_pointer", syscall(NX_SYS_REQUEST, (void *)8));
    struct nx_sys_request kv = {.opcode = NX_OP_KV_GET, .name = (void *)0xdead00000000ull, .name_len = 4};
    CHECK("request_bad_key", syscall(NX_SYS_REQUEST, &kv));
    CHECK("result_bad_pointer", syscall(NX_SYS_RESULT, (void *)0xdead00000000ull, 4));
    printf("alive 1 0\n");
    return 0;
}
