/* The nanvix function SDK.
 *
 * A function is freestanding C that defines `int nx_main(const char *input, size_t len)`. It runs
 * in its own user VM on the nanvix microkernel (threads and memory only); every I/O call below
 * becomes a request on the channel to the tenant's system VM, which owns files, keys and the log.
 * Return 0 for status "ok"; anything else is status "error". Set the result with nx_result().
 * I/O calls return >= 0 on success and a negative NX_E* code on failure.
 */
#ifndef NANVIX_H
#define NANVIX_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>

#include "nanvix_abi.h"

int nx_main(const char *input, size_t len);

/* result and exit */
void nx_result(const void *data, size_t len);         /* the invocation's result (copied) */
int nx_result_printf(const char *fmt, ...);            /* formatted result */
__attribute__((noreturn)) void nx_exit(int status);

/* log: goes to the tenant's log in its system VM */
long nx_log(const char *msg, size_t len);
int nx_printf(const char *fmt, ...);                    /* formatted line to the log */

/* files, confined to the tenant's tree; paths are relative ("a/b.txt") */
long nx_file_read(const char *path, void *buf, size_t cap, uint64_t offset);
long nx_file_write(const char *path, const void *buf, size_t len, uint64_t offset);  /* truncates */
long nx_file_append(const char *path, const void *buf, size_t len);
long nx_file_size(const char *path);
long nx_file_delete(const char *path);
/* the request loops behind them (also the Linux-ABI layer's): the bytes moved, a request per data
 * slot, up to the first error (*err: 0, or that error); pwrite's flags are NX_WRITE_*, and *end
 * (if given) gets the offset after the bytes written: with NX_WRITE_APPEND, the file's size */
size_t nx_file_pread(const char *path, void *buf, size_t cap, uint64_t offset, long *err);
size_t nx_file_pwrite(const char *path, const void *buf, size_t len, uint64_t offset, uint32_t flags,
                      long *err, uint64_t *end);

/* key-value store, durable once acknowledged */
long nx_kv_get(const char *key, void *buf, size_t cap);   /* value length, or -NX_ENOENT */
long nx_kv_put(const char *key, const void *val, size_t len);
long nx_kv_delete(const char *key);
long nx_kv_add(const char *key, int64_t delta);           /* atomic; returns the new value */

/* clock */
uint64_t nx_clock_ns(void);        /* wall clock (from the system VM), ns since the epoch */
uint64_t nx_cycles(void);          /* the guest's cycle counter (rdtsc), no exit */
uint64_t nx_uptime_ns(void);       /* since this user VM started, from the cycle counter */

/* threads: cooperative, on the one vCPU; a thread blocked on I/O lets the others run */
typedef int nx_thread_t;
int nx_thread_create(nx_thread_t *t, void *(*fn)(void *), void *arg);
int nx_thread_join(nx_thread_t t, void **ret);
void nx_yield(void);
int nx_thread_self(void);

/* memory */
void *malloc(size_t n);
void *calloc(size_t n, size_t size);
void *realloc(void *p, size_t n);
void free(void *p);
void *nx_mmap(size_t len);         /* page-aligned, zeroed pages */
void nx_munmap(void *p, size_t len);
void *nx_sbrk(long delta);
size_t nx_mem_free(void);          /* bytes the frame allocator still has */

/* a raw request on the channel: for tools and tests that need an opcode the SDK does not wrap */
long nx_request(uint32_t opcode, uint32_t flags, const void *name, uint32_t name_len,
                const void *val, uint32_t val_len, void *out, uint32_t out_cap, uint64_t arg,
                uint32_t *out_len);
uint64_t nx_hypercall(uint32_t nr, uint64_t a0, uint64_t a1);

/* nx_request in steps, for a guest that drives its channel itself (the refinement harness's
 * stepper): post without waiting (the entry's user_data, or -NX_E2BIG / -NX_ENOSPC), take one
 * posted completion (-2: none; -1: it answers no request of ours; else the request slot it
 * answers, whose answer nx_finish then collects), and park the vCPU until a completion comes. */
long nx_post(uint32_t opcode, uint32_t flags, const void *name, uint32_t name_len,
             const void *val, uint32_t val_len, uint32_t out_cap, uint64_t arg);
int nx_reap_one(struct nx_cqe *seen);
long nx_finish(int slot, void *out, uint32_t out_cap, uint32_t *out_len);
void nx_park(void);

/* a little libc */
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strchr(const char *s, int c);
long nx_atol(const char *s, size_t len);
int nx_vsnprintf(char *buf, size_t cap, const char *fmt, va_list ap);
int nx_snprintf(char *buf, size_t cap, const char *fmt, ...);

#endif
