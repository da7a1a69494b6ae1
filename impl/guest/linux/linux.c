/* The Linux-ABI layer of the nanvix microkernel: static Linux programs (musl) in a user VM.
 *
 * A program's system calls arrive at nx_linux_syscall (entry.S) as plain calls, at CPL3, with no
 * exit. What a process keeps to itself stays here: memory (mmap, munmap, mremap, brk, madvise on
 * the microkernel's frame allocator), TLS (arch_prctl with wrfsbase), threads and futexes (on the
 * microkernel's cooperative threads), clocks (the TSC, calibrated against one clock request),
 * signals (accepted, never delivered). Files go through a per-VM descriptor table whose
 * operations become channel requests to the tenant's system VM, which alone decides what exists:
 * paths are resolved here for the program's sake (cwd, `..` stops at the root) and checked again
 * there, beneath the tenant's tree. fd 0 reads the invocation's input; fd 1 and 2 go to the
 * invocation's log, a line per request (fd 1 is the result instead for a plain program). Every
 * pointer and length a program passes is checked first: a bad one is EFAULT or EINVAL, never a
 * fault. Anything else is ENOSYS.
 */
#include "nanvix.h"
#include "nanvix_linux.h"

#define INFO ((struct nx_info *)NX_GPA_INFO)

/* the microkernel's interface to this layer (kernel.c) */
void nx_boot(void);
void nx_snapshot(void);
int nx_resumed(void);
int nx_frames_are(uint64_t p, uint64_t n, int want_used);
void nx_frames_take(uint64_t p, uint64_t n);
int nx_mem_ok(uint64_t p, uint64_t len);
int nx_wait(const volatile void *key, uint64_t until);
int nx_wake(const volatile void *key, int n);
int nx_requeue(const volatile void *key, const volatile void *to, int n);
int nx_thread_spawn(uint64_t rsp);
__attribute__((noreturn)) void nx_thread_exit(void);
int nx_threads_live(void);
void nx_thread_fs_switch(void);
void nx_thread_set_fs(int id, uint64_t base);
void nx_linux_entry(void);
void nx_linux_child(void);
__attribute__((noreturn)) void nx_linux_enter(uint64_t entry, uint64_t sp);

extern const struct nx_limage nx_linux_image;   /* the boot block, generated per image */

/* ---- Linux's numbers (x86-64) ---------------------------------------------------------------- */
enum {
    EPERM = 1, ENOENT = 2, ESRCH = 3, EINTR = 4, EIO = 5, EBADF = 9, EAGAIN = 11, ENOMEM = 12,
    EACCES = 13, EFAULT = 14, EEXIST = 17, ENOTDIR = 20, EISDIR = 21, EINVAL = 22, EMFILE = 24,
    ENOTTY = 25, EFBIG = 27, ENOSPC = 28, ESPIPE = 29, EROFS = 30, ERANGE = 34, ENAMETOOLONG = 36,
    ENOSYS = 38, ENOTEMPTY = 39, ETIMEDOUT = 110, EDQUOT = 122, ENODEV = 19, EXDEV = 18, E2BIG = 7,
};

#define O_ACCMODE 3
#define O_WRONLY 1
#define O_RDWR 2
#define O_CREAT 0100
#define O_EXCL 0200
#define O_TRUNC 01000
#define O_APPEND 02000
#define O_DIRECTORY 0200000
#define O_CLOEXEC 02000000
#define AT_FDCWD (-100)
#define AT_REMOVEDIR 0x200
#define AT_EMPTY_PATH 0x1000

#define S_IFDIR 0040000
#define S_IFREG 0100000
#define S_IFCHR 0020000
#define S_IFIFO 0010000

#define MAP_SHARED 0x01
#define MAP_PRIVATE 0x02
#define MAP_FIXED 0x10
#define MAP_ANONYMOUS 0x20
#define MAP_FIXED_NOREPLACE 0x100000
#define MREMAP_MAYMOVE 1
#define MADV_DONTNEED 4

#define CLONE_VM 0x100
#define CLONE_SETTLS 0x80000
#define CLONE_PARENT_SETTID 0x100000
#define CLONE_CHILD_CLEARTID 0x200000
#define CLONE_CHILD_SETTID 0x1000000
#define CLONE_THREAD 0x10000

#define PAGE 4096ull
#define PID 1
#define UID 1000

struct timespec64 { int64_t sec, nsec; };

/* the registers entry.S saved, lowest address first */
struct nx_frame {
    uint64_t r15, r14, r13, r12, rbx, rbp, nr, rdi, rsi, rdx, r10, r8, r9, ret;
};

/* ---- helpers ------------------------------------------------------------------------------- */

static int uok(uint64_t p, uint64_t len) { return p && nx_mem_ok(p, len ? len : 1); }

/* A NUL-terminated string from the program, into buf (at most cap - 1 bytes). */
static long ustr(uint64_t p, char *buf, size_t cap)
{
    for (size_t i = 0; i < cap; i++) {
        if (!uok(p + i, 1))
            return -EFAULT;
        buf[i] = ((const char *)p)[i];
        if (!buf[i])
            return (long)i;
    }
    return -ENAMETOOLONG;
}

static long nx_err(long r)   /* a system VM's -NX_E* answer as a Linux errno (they agree) */
{
    return r;
}

static uint64_t rdrand64(void)
{
    uint64_t v;
    unsigned char ok;
    for (int i = 0; i < 16; i++) {
        __asm__ volatile("rdrand %0; setc %1" : "=r"(v), "=qm"(ok));
        if (ok)
            return v;
    }
    return nx_cycles() * 0x9e3779b97f4a7c15ull;
}

/* ---- clocks -------------------------------------------------------------------------------- */

static uint64_t wall0_ns, wall0_tsc; /* the one clock request of an invocation */

static uint64_t cycles_to_ns(uint64_t c)
{
    uint64_t khz = INFO->tsc_khz ? INFO->tsc_khz : 1000000;
    return c / khz * 1000000ull + c % khz * 1000000ull / khz;
}

static uint64_t mono_ns(void) { return cycles_to_ns(nx_cycles()); }

static uint64_t real_ns(void)
{
    if (!nx_resumed())
        return mono_ns();          /* the snapshot is taken with no system VM to ask */
    if (!wall0_tsc) {
        wall0_ns = nx_clock_ns();
        wall0_tsc = nx_cycles();
    }
    return wall0_ns + cycles_to_ns(nx_cycles() - wall0_tsc);
}

static long sys_clock_gettime(long clk, uint64_t ts)
{
    if (!uok(ts, sizeof(struct timespec64)))
        return -EFAULT;
    if (clk < 0 || clk > 11)
        return -EINVAL;
    uint64_t ns = (clk == 0 || clk == 5 || clk == 8 || clk == 11) ? real_ns() : mono_ns();
    ((struct timespec64 *)ts)->sec = (int64_t)(ns / 1000000000ull);
    ((struct timespec64 *)ts)->nsec = (int64_t)(ns % 1000000000ull);
    return 0;
}

static uint64_t ts_ns(const struct timespec64 *t) { return (uint64_t)t->sec * 1000000000ull + (uint64_t)t->nsec; }

static int ts_bad(uint64_t p)
{
    if (!uok(p, sizeof(struct timespec64)))
        return -EFAULT;
    const struct timespec64 *t = (const struct timespec64 *)p;
    return t->sec < 0 || t->nsec < 0 || t->nsec >= 1000000000 ? -EINVAL : 0;
}

static uint64_t ns_to_cycles(uint64_t ns)
{
    uint64_t khz = INFO->tsc_khz ? INFO->tsc_khz : 1000000;
    return ns / 1000000ull * khz + ns % 1000000ull * khz / 1000000ull;
}

static long sleep_until(uint64_t until_cycles)
{
    static volatile int sleepers;   /* a key nobody wakes */
    if (until_cycles > nx_cycles())
        nx_wait(&sleepers, until_cycles);
    return 0;
}

static long sys_nanosleep(long clk, long flags, uint64_t req)
{
    long e = ts_bad(req);
    if (e)
        return e;
    uint64_t ns = ts_ns((const struct timespec64 *)req);
    if (flags & 1) {               /* TIMER_ABSTIME */
        uint64_t now = (clk == 0) ? real_ns() : mono_ns();
        ns = ns > now ? ns - now : 0;
    }
    return sleep_until(nx_cycles() + ns_to_cycles(ns));
}

/* ---- memory: anonymous mappings on the frame allocator ------------------------------------ */

static uint64_t pages(uint64_t len) { return (len + PAGE - 1) / PAGE; }

static long sys_mmap(uint64_t addr, uint64_t len, long prot, long flags, long fd, uint64_t off);
static long fd_pread(int fd, void *buf, uint64_t len, uint64_t off);

static long sys_mmap(uint64_t addr, uint64_t len, long prot, long flags, long fd, uint64_t off)
{
    (void)prot;
    if (!len || len > (1ull << 40) || off % PAGE)
        return -EINVAL;
    if (!(flags & (MAP_SHARED | MAP_PRIVATE)))
        return -EINVAL;
    int anon = (flags & MAP_ANONYMOUS) != 0;
    if (!anon && (flags & MAP_SHARED))
        return -ENODEV;            /* a shared file mapping would need the system VM's pages */
    uint64_t n = pages(len), p;
    if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) {
        if (addr % PAGE)
            return -EINVAL;
        if (nx_frames_are(addr, n, 0))
            nx_frames_take(addr, n);
        else if ((flags & MAP_FIXED) && !(flags & MAP_FIXED_NOREPLACE) && nx_frames_are(addr, n, 1))
            memset((void *)addr, 0, n * PAGE);   /* over its own mapping: fresh zero pages */
        else
            return (flags & MAP_FIXED_NOREPLACE) ? -EEXIST : -ENOMEM;
        p = addr;
    } else {
        if (n > 0xffffffffull)
            return -ENOMEM;
        p = (uint64_t)nx_mmap(n * PAGE);
        if (!p)
            return -ENOMEM;
    }
    if (!anon) {                   /* a private file mapping: a copy of the file's bytes */
        long r = fd_pread((int)fd, (void *)p, len, off);
        if (r < 0) {
            nx_munmap((void *)p, n * PAGE);
            return r;
        }
    }
    return (long)p;
}

/* Give back the frames of [p, p + len) that mmap handed out (the rest is left alone). */
static void release(uint64_t p, uint64_t n)
{
    for (uint64_t k = 0; k < n; k++)
        if (nx_frames_are(p + k * PAGE, 1, 1))
            nx_munmap((void *)(p + k * PAGE), PAGE);
}

static long sys_munmap(uint64_t p, uint64_t len)
{
    if (p % PAGE || !len || p + len < p || !nx_mem_ok(p, len))
        return -EINVAL;            /* (nothing of the program's lies outside guest memory) */
    release(p, pages(len));
    return 0;
}

static long sys_mremap(uint64_t old, uint64_t oldlen, uint64_t newlen, long flags, uint64_t new_addr)
{
    (void)new_addr;
    if (old % PAGE || !newlen || (flags & ~MREMAP_MAYMOVE))
        return -EINVAL;
    uint64_t on = pages(oldlen), nn = pages(newlen);
    if (!on || !nx_frames_are(old, on, 1))
        return -EFAULT;
    if (nn <= on) {
        release(old + nn * PAGE, on - nn);
        return (long)old;
    }
    if (nx_frames_are(old + on * PAGE, nn - on, 0)) {
        nx_frames_take(old + on * PAGE, nn - on);
        return (long)old;
    }
    if (!(flags & MREMAP_MAYMOVE))
        return -ENOMEM;
    void *p = nx_mmap(nn * PAGE);
    if (!p)
        return -ENOMEM;
    memcpy(p, (void *)old, on * PAGE);
    nx_munmap((void *)old, on * PAGE);
    return (long)p;
}

static long sys_madvise(uint64_t p, uint64_t len, long advice)
{
    if (p % PAGE)
        return -EINVAL;
    if (len && !nx_mem_ok(p, len))
        return -ENOMEM;            /* Linux's answer for a range that is not mapped */
    if (advice == MADV_DONTNEED) {  /* anonymous pages read as zero afterwards */
        uint64_t n = pages(len);
        for (uint64_t k = 0; k < n; k++)
            if (nx_frames_are(p + k * PAGE, 1, 1))
                memset((void *)(p + k * PAGE), 0, PAGE);
    }
    return 0;
}

static long sys_brk(uint64_t want)
{
    uint64_t cur = (uint64_t)nx_sbrk(0);
    if (want && want != cur && nx_sbrk((long)(want - cur)) != (void *)-1)
        cur = want;
    return (long)cur;
}

/* ---- threads ------------------------------------------------------------------------------- */

#define MAX_TID 32                 /* the microkernel's threads; a thread's tid is its id + 1 */
static uint64_t clear_tid[MAX_TID]; /* set_tid_address / CLONE_CHILD_CLEARTID */

static long tid(void) { return nx_thread_self() + 1; }

static long sys_clone(struct nx_frame *f, uint64_t flags, uint64_t sp, uint64_t ptid, uint64_t ctid, uint64_t tls)
{
    if (!(flags & CLONE_VM) || !(flags & CLONE_THREAD))
        return -ENOSYS;            /* no processes: one program per user VM */
    if (sp % 8 || !uok(sp - 256, 256))
        return -EINVAL;
    if ((flags & CLONE_PARENT_SETTID) && !uok(ptid, 4))
        return -EFAULT;
    if ((flags & (CLONE_CHILD_CLEARTID | CLONE_CHILD_SETTID)) && !uok(ctid, 4))
        return -EFAULT;
    /* On the child's stack: a copy of this frame with the return address last (so the child
     * returns from the call at sp), under it what nx_switch pops: six registers, nx_linux_child. */
    uint64_t *top = (uint64_t *)sp;
    struct nx_frame *cf = (struct nx_frame *)(top - sizeof(struct nx_frame) / 8);
    *cf = *f;
    uint64_t *s = (uint64_t *)cf;
    *--s = (uint64_t)nx_linux_child;
    for (int i = 0; i < 6; i++)
        *--s = 0;
    int id = nx_thread_spawn((uint64_t)s);
    if (id < 0)
        return -EAGAIN;
    long child = id + 1;
    nx_thread_set_fs(id, (flags & CLONE_SETTLS) ? tls : ({ uint64_t b; __asm__ volatile("rdfsbase %0" : "=r"(b)); b; }));
    clear_tid[id] = (flags & CLONE_CHILD_CLEARTID) ? ctid : 0;
    if (flags & CLONE_PARENT_SETTID)
        *(volatile int *)ptid = (int)child;
    if (flags & CLONE_CHILD_SETTID)
        *(volatile int *)ctid = (int)child;
    return child;
}

static __attribute__((noreturn)) void exit_group(int status);

static __attribute__((noreturn)) void thread_exit(int status)
{
    int self = nx_thread_self();
    uint64_t ct = clear_tid[self];
    if (nx_threads_live() <= 1)
        exit_group(status);        /* the last thread: the process ends */
    if (ct && uok(ct, 4)) {
        *(volatile int *)ct = 0;
        nx_wake((const volatile void *)ct, 1);
    }
    clear_tid[self] = 0;
    nx_thread_exit();
}

static long sys_futex(uint64_t uaddr, long op, uint64_t val, uint64_t timeout, uint64_t uaddr2, uint64_t val3)
{
    long cmd = op & 127;
    if (uaddr % 4 || !uok(uaddr, 4))
        return -EFAULT;
    volatile uint32_t *w = (volatile uint32_t *)uaddr;
    switch (cmd) {
    case 0:    /* FUTEX_WAIT: a relative timeout */
    case 9: {  /* FUTEX_WAIT_BITSET: an absolute one */
        uint64_t until = 0;
        if (timeout) {
            long e = ts_bad(timeout);
            if (e)
                return e;
            uint64_t ns = ts_ns((const struct timespec64 *)timeout);
            if (cmd == 9) {
                uint64_t now = (op & 256) ? real_ns() : mono_ns();
                ns = ns > now ? ns - now : 0;
            }
            until = nx_cycles() + ns_to_cycles(ns);
        }
        if (*w != (uint32_t)val)
            return -EAGAIN;
        return nx_wait(w, until) < 0 ? -ETIMEDOUT : 0;
    }
    case 1:    /* FUTEX_WAKE */
    case 10:   /* FUTEX_WAKE_BITSET */
        return nx_wake(w, (int)(val > 0x7fffffff ? 0x7fffffff : val));
    case 3:    /* FUTEX_REQUEUE */
    case 4: {  /* FUTEX_CMP_REQUEUE */
        if (uaddr2 % 4 || !uok(uaddr2, 4))
            return -EFAULT;
        if (cmd == 4 && *w != (uint32_t)val3)
            return -EAGAIN;
        int n = nx_wake(w, (int)(val > 0x7fffffff ? 0x7fffffff : val));
        long m = (long)timeout;   /* (val2, in the timeout's place) */
        return n + nx_requeue(w, (const volatile void *)uaddr2, (int)(m > 0x7fffffff || m < 0 ? 0x7fffffff : m));
    }
    }
    return -ENOSYS;
}

/* ---- the descriptor table ------------------------------------------------------------------ */

enum { FD_FREE, FD_INPUT, FD_LOG, FD_RESULT, FD_NULL, FD_RANDOM, FD_FILE, FD_DIR, FD_MEM, FD_IMGDIR };
#define MAX_FDS 64
#define PATH_MAX_ 256              /* a tenant path: NX_NAME_MAX bytes and a NUL */

struct lfd {
    int kind;
    uint32_t flags;                /* open's flags */
    uint64_t off;                  /* files: the offset; directories: the next entry's index */
    const uint8_t *mem;            /* FD_MEM */
    uint64_t len;                  /* FD_MEM: its size; FD_LOG: its stream */
    char path[PATH_MAX_];          /* FD_FILE, FD_DIR: relative to the tenant's root ("." = it) */
};
static struct lfd fds[MAX_FDS];
static char cwd[PATH_MAX_] = ".";

/* the two log streams, a line per request */
#define LINE 2048
static struct { char buf[LINE]; uint32_t n; } streams[2];
static uint64_t result_dropped;

static void result_put(const uint8_t *p, uint64_t n);

/* A line to the log; before the snapshot (no system VM yet) it goes to the result area instead,
 * where the host finds it should the program end there (its error message). */
static void stream_flush(int s)
{
    if (streams[s].n) {
        if (nx_resumed()) {
            nx_log(streams[s].buf, streams[s].n);
        } else {
            result_put((const uint8_t *)streams[s].buf, streams[s].n);
            result_put((const uint8_t *)"\n", 1);
        }
    }
    streams[s].n = 0;
}

static void stream_put(int s, const uint8_t *p, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        if (p[i] == '\n') {
            stream_flush(s);
            continue;
        }
        if (streams[s].n == LINE)
            stream_flush(s);
        streams[s].buf[streams[s].n++] = (char)p[i];
    }
}

static void result_put(const uint8_t *p, uint64_t n)
{
    uint32_t have = INFO->result_len;
    uint64_t room = have < NX_RESULT_MAX ? NX_RESULT_MAX - have : 0;
    uint64_t k = n < room ? n : room;
    memcpy(INFO->result + have, p, k);
    INFO->result_len = have + (uint32_t)k;
    result_dropped += n - k;
}

static int fd_new(int kind, int from)
{
    for (int i = from; i < MAX_FDS; i++)
        if (fds[i].kind == FD_FREE) {
            memset(&fds[i], 0, sizeof fds[i] - PATH_MAX_);
            fds[i].kind = kind;
            fds[i].path[0] = 0;
            return i;
        }
    return -EMFILE;
}

static struct lfd *fd_get(long fd)
{
    return fd >= 0 && fd < MAX_FDS && fds[fd].kind != FD_FREE ? &fds[fd] : 0;
}

static const struct nx_lfile *image_file(const char *name)
{
    for (uint32_t i = 0; i < nx_linux_image.nfiles; i++)
        if (!strcmp(nx_linux_image.files[i].name, name))
            return &nx_linux_image.files[i];
    return 0;
}

/* Resolve a program's path against dirfd (AT_FDCWD or a directory) into out: a path relative to
 * the tenant's root with no "." or ".." ("." for the root itself). "/" is the tenant's root and
 * ".." stops there, as at a real root. */
static long resolve(long dirfd, const char *path, char *out)
{
    char tmp[2 * PATH_MAX_];
    size_t n = 0;
    if (!path[0])
        return -ENOENT;
    if (path[0] != '/') {
        const char *base = cwd;
        if (dirfd != AT_FDCWD) {
            struct lfd *d = fd_get(dirfd);
            if (!d)
                return -EBADF;
            if (d->kind != FD_DIR)
                return -ENOTDIR;
            base = d->path;
        }
        n = strlen(base);
        memcpy(tmp, base, n);
        tmp[n++] = '/';
    }
    size_t pl = strlen(path);
    if (n + pl >= sizeof tmp)
        return -ENAMETOOLONG;
    memcpy(tmp + n, path, pl + 1);
    /* normalise, component by component, into out */
    size_t o = 0;
    char *p = tmp;
    while (*p) {
        while (*p == '/')
            p++;
        char *c = p;
        while (*p && *p != '/')
            p++;
        size_t cl = (size_t)(p - c);
        if (cl == 0 || (cl == 1 && c[0] == '.'))
            continue;
        if (cl == 2 && c[0] == '.' && c[1] == '.') {
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--;
            continue;
        }
        if (o + (o ? 1 : 0) + cl >= NX_NAME_MAX)
            return -ENAMETOOLONG;
        if (o)
            out[o++] = '/';
        memcpy(out + o, c, cl);
        o += cl;
    }
    if (o == 0)
        out[o++] = '.';
    out[o] = 0;
    return 0;
}

static long req_path(uint32_t op, uint32_t flags, const char *path, const void *val, uint32_t vlen,
                     void *out, uint32_t cap, uint64_t arg, uint32_t *got)
{
    if (!nx_resumed())
        return -EIO;               /* no system VM while the snapshot is taken */
    return nx_err(nx_request(op, flags, path, (uint32_t)strlen(path), val, vlen, out, cap, arg, got));
}

static long tenant_stat(const char *path, struct nx_stat *st)
{
    uint32_t got = 0;
    if (!nx_resumed())
        return -ENOENT;            /* before the snapshot the tenant's tree looks empty */
    long r = req_path(NX_OP_FILE_STAT, 0, path, 0, 0, st, sizeof *st, 0, &got);
    if (r < 0)
        return r;
    return got == sizeof *st ? 0 : -EIO;
}

/* Special names, outside the tenant's tree. */
static int special(const char *abs, const char *rel, const struct nx_lfile **mf)
{
    if (!strcmp(abs, "/dev/null"))
        return FD_NULL;
    if (!strcmp(abs, "/dev/urandom") || !strcmp(abs, "/dev/random"))
        return FD_RANDOM;
    if (!strcmp(abs, "/dev/stdin"))
        return FD_INPUT;
    if (!strcmp(rel, ".nanvix"))
        return FD_IMGDIR;
    if (!strncmp(rel, ".nanvix/", 8)) {
        *mf = image_file(rel + 8);
        return FD_MEM;
    }
    return FD_FREE;
}

/* A program's path: copied in (path, 2 * PATH_MAX_ bytes), resolved (rel) and classified: FD_FREE
 * for the tenant's tree, else the special kind (mf: the image's file); < 0 an error. */
static long lookup(long dirfd, uint64_t upath, char *path, char *rel, const struct nx_lfile **mf)
{
    rel[0] = 0;
    long r = ustr(upath, path, PATH_MAX_ * 2);
    if (r < 0)
        return r;
    if ((r = resolve(dirfd, path, rel)) < 0)
        return r;
    *mf = 0;
    int kind = special(path, rel, mf);
    return kind == FD_MEM && !*mf ? -ENOENT : kind;
}

static long sys_openat(long dirfd, uint64_t upath, long flags, long mode)
{
    (void)mode;
    char path[PATH_MAX_ * 2], rel[PATH_MAX_];
    const struct nx_lfile *mf;
    long kind = lookup(dirfd, upath, path, rel, &mf), r;
    if (kind < 0)
        return kind;
    if (kind != FD_FREE) {
        if ((kind == FD_MEM || kind == FD_IMGDIR) && (flags & O_ACCMODE) != 0)
            return kind == FD_MEM ? -EROFS : -EISDIR;
        int fd = fd_new((int)kind, 0);
        if (fd >= 0 && mf) {
            fds[fd].mem = mf->data;
            fds[fd].len = mf->len;
        }
        if (fd >= 0)
            fds[fd].flags = (uint32_t)flags;
        return fd;
    }
    if (!strncmp(rel, "proc/", 5) || !strncmp(rel, "sys/", 4) || !strcmp(rel, "proc") || !strcmp(rel, "sys"))
        return -ENOENT;            /* no kernel's view of itself to read */
    struct nx_stat st;
    long sr = tenant_stat(rel, &st);
    if (sr == 0 && (flags & O_CREAT) && (flags & O_EXCL))
        return -EEXIST;
    if (sr == 0 && st.type == NX_FT_DIR) {
        if ((flags & O_ACCMODE) != 0 || (flags & O_CREAT))
            return -EISDIR;
        int fd = fd_new(FD_DIR, 0);
        if (fd >= 0) {
            memcpy(fds[fd].path, rel, strlen(rel) + 1);
            fds[fd].flags = (uint32_t)flags;
        }
        return fd;
    }
    if (flags & O_DIRECTORY)
        return sr < 0 ? sr : -ENOTDIR;
    if (sr == -ENOENT && (flags & O_CREAT)) {
        r = req_path(NX_OP_FILE_WRITE, NX_WRITE_EXCL, rel, 0, 0, 0, 0, 0, 0);
        if (r < 0 && r != -EEXIST)
            return r;
    } else if (sr < 0) {
        return sr;
    } else if ((flags & O_TRUNC) && (flags & O_ACCMODE) != 0) {
        r = req_path(NX_OP_FILE_WRITE, NX_WRITE_SETSIZE, rel, 0, 0, 0, 0, 0, 0);
        if (r < 0)
            return r;
    }
    int fd = fd_new(FD_FILE, 0);
    if (fd < 0)
        return fd;
    memcpy(fds[fd].path, rel, strlen(rel) + 1);
    fds[fd].flags = (uint32_t)flags;
    return fd;
}

/* File bytes through the channel (the SDK's loops): a short count after a partial transfer, the
 * error only when nothing moved. *end: the offset after the bytes written (an append's: the file's
 * size, from the system VM's answer, so an append is one request). */
static long file_read(struct lfd *f, void *buf, uint64_t len, uint64_t off)
{
    long err;
    if (!nx_resumed())
        return -EIO;
    size_t n = nx_file_pread(f->path, buf, len, off, &err);
    return n ? (long)n : nx_err(err);
}

static long file_write(struct lfd *f, const void *buf, uint64_t len, uint64_t off, uint64_t *end)
{
    long err;
    if (!nx_resumed())
        return -EIO;
    size_t n = nx_file_pwrite(f->path, buf, len, off, (f->flags & O_APPEND) ? NX_WRITE_APPEND : 0, &err, end);
    return n || !err ? (long)n : nx_err(err);
}

static long fd_pread(int fd, void *buf, uint64_t len, uint64_t off)
{
    struct lfd *f = fd_get(fd);
    if (!f)
        return -EBADF;
    if (f->kind == FD_FILE)
        return file_read(f, buf, len, off);
    if (f->kind == FD_MEM) {
        uint64_t k = off < f->len ? f->len - off : 0;
        k = k < len ? k : len;
        memcpy(buf, f->mem + off, k);
        return (long)k;
    }
    return -ENODEV;
}

static long do_read(struct lfd *f, void *buf, uint64_t len, int64_t at)
{
    uint64_t off = at >= 0 ? (uint64_t)at : f->off;
    long r;
    if ((f->flags & O_ACCMODE) == O_WRONLY)
        return -EBADF;
    switch (f->kind) {
    case FD_INPUT: {
        uint32_t n = INFO->input_len <= NX_INPUT_MAX ? INFO->input_len : NX_INPUT_MAX;
        uint64_t k = off < n ? n - off : 0;
        k = k < len ? k : len;
        memcpy(buf, INFO->input + off, k);
        r = (long)k;
        break;
    }
    case FD_MEM:
    case FD_FILE:
        r = fd_pread((int)(f - fds), buf, len, off);
        break;
    case FD_NULL:
    case FD_LOG:
    case FD_RESULT:
        r = 0;
        break;
    case FD_RANDOM:
        for (uint64_t i = 0; i < len; i += 8) {
            uint64_t v = rdrand64();
            memcpy((uint8_t *)buf + i, &v, len - i < 8 ? len - i : 8);
        }
        r = (long)len;
        break;
    case FD_DIR:
        return -EISDIR;
    default:
        return -EBADF;
    }
    if (r > 0 && at < 0)
        f->off += (uint64_t)r;
    return r;
}

static long do_write(struct lfd *f, const void *buf, uint64_t len, int64_t at)
{
    long r;
    if (f->kind != FD_LOG && f->kind != FD_RESULT && (f->flags & O_ACCMODE) == 0)
        return -EBADF;
    switch (f->kind) {
    case FD_LOG:
        stream_put((int)f->len, buf, len);   /* (len: which stream, stdout's or stderr's) */
        return (long)len;
    case FD_RESULT:
        result_put(buf, len);
        return (long)len;
    case FD_NULL:
    case FD_RANDOM:
        return (long)len;
    case FD_FILE: {
        uint64_t off = at >= 0 ? (uint64_t)at : f->off, end = off;
        r = file_write(f, buf, len, off, &end);
        if (r > 0 && at < 0)
            f->off = end;
        return r;
    }
    case FD_DIR:
        return -EISDIR;
    default:
        return -EBADF;
    }
}

struct iovec_ { uint64_t base, len; };

static long sys_rw(long fd, uint64_t buf, uint64_t len, int64_t at, int write)
{
    struct lfd *f = fd_get(fd);
    if (!f)
        return -EBADF;
    if ((int64_t)len < 0)
        return -EINVAL;
    if (len && !uok(buf, len))
        return -EFAULT;
    if (at < -1)
        return -EINVAL;
    return write ? do_write(f, (const void *)buf, len, at) : do_read(f, (void *)buf, len, at);
}

static long sys_rwv(long fd, uint64_t iov, long cnt, int write)
{
    if (cnt < 0 || cnt > 1024)
        return -EINVAL;
    if (cnt && !uok(iov, (uint64_t)cnt * sizeof(struct iovec_)))
        return -EFAULT;
    struct lfd *f = fd_get(fd);
    if (!f)
        return -EBADF;
    const struct iovec_ *v = (const struct iovec_ *)iov;
    for (long i = 0; i < cnt; i++)   /* every buffer checked before anything moves */
        if ((int64_t)v[i].len < 0 || (v[i].len && !uok(v[i].base, v[i].len)))
            return (int64_t)v[i].len < 0 ? -EINVAL : -EFAULT;
    long total = 0;
    for (long i = 0; i < cnt; i++) {
        if (!v[i].len)
            continue;
        long r = write ? do_write(f, (const void *)v[i].base, v[i].len, -1)
                       : do_read(f, (void *)v[i].base, v[i].len, -1);
        if (r < 0)
            return total ? total : r;
        total += r;
        if ((uint64_t)r < v[i].len)
            break;
    }
    return total;
}

static long sys_lseek(long fd, int64_t off, long whence)
{
    struct lfd *f = fd_get(fd);
    if (!f)
        return -EBADF;
    int64_t base;
    if (f->kind != FD_FILE && f->kind != FD_MEM && f->kind != FD_INPUT && f->kind != FD_DIR && f->kind != FD_IMGDIR)
        return -ESPIPE;
    if (whence == 0)
        base = 0;
    else if (whence == 1)
        base = (int64_t)f->off;
    else if (whence == 2) {
        if (f->kind == FD_FILE) {
            long sz = req_path(NX_OP_FILE_SIZE, 0, f->path, 0, 0, 0, 0, 0, 0);
            if (sz < 0)
                return sz;
            base = sz;
        } else
            base = f->kind == FD_INPUT ? (int64_t)INFO->input_len : (int64_t)f->len;
    } else
        return -EINVAL;
    if ((off > 0 && base > INT64_MAX - off) || base + off < 0)
        return -EINVAL;
    if ((f->kind == FD_DIR || f->kind == FD_IMGDIR) && base + off != 0)
        return -EINVAL;            /* a directory rewinds only */
    f->off = (uint64_t)(base + off);
    return (long)f->off;
}

/* struct stat of x86-64 Linux */
struct kstat {
    uint64_t dev, ino, nlink;
    uint32_t mode, uid, gid, _pad0;
    uint64_t rdev;
    int64_t size, blksize, blocks;
    int64_t atime, atime_ns, mtime, mtime_ns, ctime, ctime_ns;
    int64_t _unused[3];
};

static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    while (*s)
        h = (h ^ (uint8_t)*s++) * 1099511628211ull;
    return h | 1;
}

static void fill_stat(struct kstat *k, uint32_t mode, uint64_t size, int64_t mtime_ns, const char *name)
{
    memset(k, 0, sizeof *k);
    k->dev = 1;
    k->ino = name_hash(name);
    k->nlink = (mode & S_IFDIR) ? 2 : 1;
    k->mode = mode;
    k->uid = k->gid = UID;
    k->size = (int64_t)size;
    k->blksize = 4096;
    k->blocks = (int64_t)((size + 511) / 512);
    k->atime = k->mtime = k->ctime = mtime_ns / 1000000000;
    k->atime_ns = k->mtime_ns = k->ctime_ns = mtime_ns % 1000000000;
}

static long stat_fd(struct lfd *f, struct kstat *k)
{
    switch (f->kind) {
    case FD_FILE:
    case FD_DIR: {
        struct nx_stat st;
        long r = tenant_stat(f->path, &st);
        if (r < 0)
            return r;
        fill_stat(k, st.type == NX_FT_DIR ? S_IFDIR | 0755 : S_IFREG | 0644, st.size, st.mtime_ns, f->path);
        return 0;
    }
    case FD_MEM:
        fill_stat(k, S_IFREG | 0444, f->len, 0, "mem");
        return 0;
    case FD_IMGDIR:
        fill_stat(k, S_IFDIR | 0555, 0, 0, ".nanvix");
        return 0;
    case FD_INPUT:
    case FD_LOG:
    case FD_RESULT:
        fill_stat(k, S_IFIFO | 0600, 0, 0, "pipe");
        return 0;
    default:
        fill_stat(k, S_IFCHR | 0666, 0, 0, "dev");
        return 0;
    }
}

static long sys_fstatat(long dirfd, uint64_t upath, uint64_t ubuf, long flags)
{
    if (!uok(ubuf, sizeof(struct kstat)))
        return -EFAULT;
    struct kstat *k = (struct kstat *)ubuf;
    char path[PATH_MAX_ * 2], rel[PATH_MAX_];
    if ((flags & AT_EMPTY_PATH) && uok(upath, 1) && !*(const char *)upath) {   /* the fd itself */
        if (dirfd == AT_FDCWD)
            upath = (uint64_t)".";
        else
            return fd_get(dirfd) ? stat_fd(fd_get(dirfd), k) : -EBADF;
    }
    const struct nx_lfile *mf;
    long kind = lookup(dirfd, upath, path, rel, &mf);
    if (kind < 0)
        return kind;
    if (kind != FD_FREE) {
        struct lfd tmp = {.kind = (int)kind, .mem = mf ? mf->data : 0, .len = mf ? mf->len : 0};
        return stat_fd(&tmp, k);
    }
    struct lfd tmp = {.kind = FD_FILE};
    memcpy(tmp.path, rel, strlen(rel) + 1);
    return stat_fd(&tmp, k);
}

struct dirent64 { uint64_t ino; int64_t off; uint16_t reclen; uint8_t type; char name[]; };

static long sys_getdents64(long fd, uint64_t ubuf, uint64_t count)
{
    struct lfd *f = fd_get(fd);
    if (!f)
        return -EBADF;
    if (f->kind != FD_DIR && f->kind != FD_IMGDIR)
        return -ENOTDIR;
    if (count > 0x7fffffff)
        count = 0x7fffffff;
    if (!uok(ubuf, count))
        return -EFAULT;
    if (f->kind == FD_IMGDIR) {    /* the files built into the image */
        uint64_t out = 0;
        for (; f->off < nx_linux_image.nfiles; f->off++) {
            const char *name = nx_linux_image.files[f->off].name;
            uint64_t len = strlen(name), reclen = (19 + len + 1 + 7) & ~7ull;
            if (out + reclen > count)
                break;
            struct dirent64 *d = (struct dirent64 *)(ubuf + out);
            d->ino = name_hash(name);
            d->off = (int64_t)(f->off + 1);
            d->reclen = (uint16_t)reclen;
            d->type = 8;
            memcpy(d->name, name, len + 1);
            out += reclen;
        }
        return f->off < nx_linux_image.nfiles && !out ? -EINVAL : (long)out;
    }
    static uint8_t packed[NX_DATA_SLOT];
    uint32_t cap = count / 2 < NX_DATA_SLOT ? (uint32_t)(count / 2) : NX_DATA_SLOT, got = 0;
    if (cap < 2 + 255)
        cap = count < NX_DATA_SLOT ? (uint32_t)count : NX_DATA_SLOT;
    long n = req_path(NX_OP_FILE_LIST, 0, f->path, 0, 0, packed, cap, f->off, &got);
    if (n < 0)
        return n == -NX_EINVAL ? -EINVAL : n;
    uint64_t out = 0, in = 0;
    for (long i = 0; i < n && in + 2 <= got; i++) {
        uint8_t type = packed[in], len = packed[in + 1];
        if (in + 2 + len > got)
            break;
        uint64_t reclen = (19 + (uint64_t)len + 1 + 7) & ~7ull;
        if (out + reclen > count)
            break;
        struct dirent64 *d = (struct dirent64 *)(ubuf + out);
        char name[256];
        memcpy(name, packed + in + 2, len);
        name[len] = 0;
        d->ino = name_hash(name);
        d->off = (int64_t)(f->off + 1);
        d->reclen = (uint16_t)reclen;
        d->type = type == NX_FT_DIR ? 4 : type == NX_FT_FILE ? 8 : 0;
        memcpy(d->name, name, (size_t)len + 1);
        out += reclen;
        in += 2 + (uint64_t)len;
        f->off++;
    }
    if (n > 0 && out == 0)
        return -EINVAL;            /* the buffer holds not even one entry */
    return (long)out;
}

static long path_op(long dirfd, uint64_t upath, char *rel)
{
    char path[PATH_MAX_ * 2];
    const struct nx_lfile *mf;
    long kind = lookup(dirfd, upath, path, rel, &mf);
    if (kind < 0)
        return kind == -ENOENT && !strncmp(rel, ".nanvix/", 8) ? -EACCES : kind;
    return kind != FD_FREE ? -EACCES : 0;   /* the layer's own names cannot be changed */
}

static long sys_unlinkat(long dirfd, uint64_t upath, long flags)
{
    char rel[PATH_MAX_];
    long r = path_op(dirfd, upath, rel);
    if (r < 0)
        return r;
    if (!(flags & AT_REMOVEDIR)) {
        struct nx_stat st;
        if (tenant_stat(rel, &st) == 0 && st.type == NX_FT_DIR)
            return -EISDIR;
    }
    return req_path(NX_OP_FILE_DELETE, (flags & AT_REMOVEDIR) ? NX_DELETE_DIR : 0, rel, 0, 0, 0, 0, 0, 0);
}

static long sys_mkdirat(long dirfd, uint64_t upath)
{
    char rel[PATH_MAX_];
    long r = path_op(dirfd, upath, rel);
    return r < 0 ? r : req_path(NX_OP_FILE_MKDIR, 0, rel, 0, 0, 0, 0, 0, 0);
}

static long sys_renameat(long ofd, uint64_t oldp, long nfd, uint64_t newp, long flags)
{
    char a[PATH_MAX_], b[PATH_MAX_];
    long r;
    if (flags)
        return -EINVAL;
    if ((r = path_op(ofd, oldp, a)) < 0 || (r = path_op(nfd, newp, b)) < 0)
        return r;
    if (!nx_resumed())
        return -EIO;
    return nx_err(nx_request(NX_OP_FILE_RENAME, 0, a, (uint32_t)strlen(a), b, (uint32_t)strlen(b), 0, 0, 0, 0));
}

static long sys_faccessat(long dirfd, uint64_t upath)
{
    static struct kstat scratch;   /* (sys_fstatat wants a buffer in the program's memory) */
    return sys_fstatat(dirfd, upath, (uint64_t)&scratch, 0);
}

static long sys_ftruncate(long fd, int64_t len)
{
    struct lfd *f = fd_get(fd);
    if (!f)
        return -EBADF;
    if (f->kind != FD_FILE || (f->flags & O_ACCMODE) == 0)
        return -EINVAL;
    if (len < 0)
        return -EINVAL;
    return req_path(NX_OP_FILE_WRITE, NX_WRITE_SETSIZE, f->path, 0, 0, 0, 0, (uint64_t)len, 0);
}

static long sys_chdir(uint64_t upath)
{
    char rel[PATH_MAX_];
    long r = path_op(AT_FDCWD, upath, rel);
    if (r < 0)
        return r;
    struct nx_stat st;
    if (strcmp(rel, ".")) {
        if ((r = tenant_stat(rel, &st)) < 0)
            return r;
        if (st.type != NX_FT_DIR)
            return -ENOTDIR;
    }
    memcpy(cwd, rel, strlen(rel) + 1);
    return 0;
}

static long sys_getcwd(uint64_t buf, uint64_t size)
{
    int root = !strcmp(cwd, ".");
    size_t len = root ? 1 : 1 + strlen(cwd);   /* "/" or "/" + cwd */
    if (size < len + 1)
        return -ERANGE;
    if (!uok(buf, len + 1))
        return -EFAULT;
    char *b = (char *)buf;
    b[0] = '/';
    if (!root)
        memcpy(b + 1, cwd, len - 1);
    b[len] = 0;
    return (long)(len + 1);
}

static long sys_dup(long fd, long to, int exact)
{
    struct lfd *f = fd_get(fd);
    if (!f)
        return -EBADF;
    if (exact) {
        if (to < 0 || to >= MAX_FDS)
            return -EBADF;
        if (to == fd)
            return to;
        fds[to] = *f;
        return to;
    }
    if (to < 0 || to >= MAX_FDS)
        return -EINVAL;
    int n = fd_new(FD_NULL, (int)to);
    if (n >= 0)
        fds[n] = *f;
    return n;
}

static long sys_fcntl(long fd, long cmd, long arg)
{
    struct lfd *f = fd_get(fd);
    if (!f)
        return -EBADF;
    switch (cmd) {
    case 0:      /* F_DUPFD */
    case 1030:   /* F_DUPFD_CLOEXEC */
        return sys_dup(fd, arg, 0);
    case 1:      /* F_GETFD */
        return (f->flags & O_CLOEXEC) ? 1 : 0;
    case 2:      /* F_SETFD */
        return 0;
    case 3:      /* F_GETFL */
        return (long)(f->flags & ~(uint32_t)O_CLOEXEC);
    case 4:      /* F_SETFL: only O_APPEND may change */
        f->flags = (f->flags & ~(uint32_t)O_APPEND) | ((uint32_t)arg & O_APPEND);
        return 0;
    }
    return -EINVAL;
}

/* ---- the rest of the process ---------------------------------------------------------------- */

static void flush_all(void)
{
    stream_flush(0);
    stream_flush(1);
    if (result_dropped) {
        char line[96];
        int n = nx_snprintf(line, sizeof line, "nanvix: stdout past the result's %u bytes: %lu bytes dropped",
                            (unsigned)NX_RESULT_MAX, (unsigned long)result_dropped);
        if (nx_resumed())
            nx_log(line, (size_t)n);
        result_dropped = 0;
    }
}

static __attribute__((noreturn)) void exit_group(int status)
{
    flush_all();
    nx_exit(status & 0xff);
}

static long put_str(char *dst, const char *s)
{
    size_t n = strlen(s);
    memcpy(dst, s, n + 1);
    return 0;
}

static long sys_uname(uint64_t buf)
{
    if (!uok(buf, 6 * 65))
        return -EFAULT;
    char *u = (char *)buf;
    memset(u, 0, 6 * 65);
    put_str(u, "Linux");
    put_str(u + 65, "nanvix");
    put_str(u + 130, "6.1.0-nanvix");
    put_str(u + 195, "#1 nanvix user VM");
    put_str(u + 260, "x86_64");
    put_str(u + 325, "(none)");
    return 0;
}

static long sys_prlimit(long pid, long res, uint64_t newp, uint64_t oldp)
{
    if (pid != 0 && pid != PID)
        return -ESRCH;
    if (res < 0 || res >= 16)
        return -EINVAL;
    (void)newp;                    /* limits cannot be changed */
    if (oldp) {
        if (!uok(oldp, 16))
            return -EFAULT;
        uint64_t v = res == 3 ? nx_linux_image.stack_size : res == 7 ? MAX_FDS : ~0ull; /* STACK, NOFILE */
        ((uint64_t *)oldp)[0] = ((uint64_t *)oldp)[1] = v;
    }
    return 0;
}

static long sys_request(uint64_t p)
{
    if (!uok(p, sizeof(struct nx_sys_request)))
        return -EFAULT;
    struct nx_sys_request *r = (struct nx_sys_request *)p;
    uint32_t op = r->opcode;
    if (op != NX_OP_LOG && op != NX_OP_KV_GET && op != NX_OP_KV_PUT && op != NX_OP_KV_DELETE && op != NX_OP_KV_ADD)
        return -EINVAL;
    if ((r->name_len && !uok((uint64_t)r->name, r->name_len)) || (r->value_len && !uok((uint64_t)r->value, r->value_len))
        || (r->out_cap && !uok((uint64_t)r->out, r->out_cap)))
        return -EFAULT;
    if (!nx_resumed())
        return -EIO;
    r->out_len = 0;
    if (op == NX_OP_LOG) {
        flush_all();               /* keep the order of the program's lines */
        r->result = nx_log(r->value, r->value_len);
        return 0;
    }
    if ((uint64_t)r->name_len + r->value_len > NX_DATA_SLOT)
        return -E2BIG;
    uint32_t got = 0;
    r->result = nx_request(op, 0, r->name, r->name_len, r->value, r->value_len, r->out,
                           r->out_cap < NX_DATA_SLOT ? r->out_cap : NX_DATA_SLOT, r->arg, &got);
    r->out_len = got;
    return 0;
}

static long dispatch(struct nx_frame *f);
extern uint64_t nx_left_guest;

/* Every system call, counted: all of them, and those that left the VM (a channel request or a
 * hypercall). Memory calls should never be among the second. */
long nx_linux_syscall(struct nx_frame *f)
{
    uint64_t before = nx_left_guest;
    long r = dispatch(f);
    if (f->nr != NX_SYS_SNAPSHOT) {   /* (the snapshot point starts the count afresh) */
        INFO->linux_syscalls++;
        INFO->linux_syscalls_out += nx_left_guest != before;
    }
    return r;
}

static long dispatch(struct nx_frame *f)
{
    uint64_t a = f->rdi, b = f->rsi, c = f->rdx, d = f->r10, e = f->r8, g = f->r9;
    switch (f->nr) {
    case 0: return sys_rw((long)a, b, c, -1, 0);                       /* read */
    case 1: return sys_rw((long)a, b, c, -1, 1);                       /* write */
    case 2: return sys_openat(AT_FDCWD, a, (long)b, (long)c);          /* open */
    case 3: {                                                          /* close */
        struct lfd *fd = fd_get((long)a);
        if (!fd)
            return -EBADF;
        if (fd->kind == FD_LOG)
            stream_flush((int)fd->len);
        fd->kind = FD_FREE;
        return 0;
    }
    case 4: return sys_fstatat(AT_FDCWD, a, b, 0);                     /* stat */
    case 5: {                                                          /* fstat */
        struct lfd *fd = fd_get((long)a);
        if (!fd)
            return -EBADF;
        if (!uok(b, sizeof(struct kstat)))
            return -EFAULT;
        return stat_fd(fd, (struct kstat *)b);
    }
    case 6: return sys_fstatat(AT_FDCWD, a, b, 0);                     /* lstat (no symlinks) */
    case 8: return sys_lseek((long)a, (int64_t)b, (long)c);
    case 9: return sys_mmap(a, b, (long)c, (long)d, (long)e, g);
    case 10: return a % PAGE ? -EINVAL : 0;                            /* mprotect: no 4 KiB PTEs */
    case 11: return sys_munmap(a, b);
    case 12: return sys_brk(a);
    case 13: return (long)a == 9 || (long)a == 19 ? -EINVAL : 0;       /* rt_sigaction: never delivered */
    case 14:                                                           /* rt_sigprocmask */
        if (c) {
            if (!uok(c, 8))
                return -EFAULT;
            *(uint64_t *)c = 0;
        }
        return 0;
    case 16: return fd_get((long)a) ? -ENOTTY : -EBADF;                /* ioctl: no terminals */
    case 17: return sys_rw((long)a, b, c, (int64_t)d, 0);              /* pread64 */
    case 18: return sys_rw((long)a, b, c, (int64_t)d, 1);              /* pwrite64 */
    case 19: return sys_rwv((long)a, b, (long)c, 0);                   /* readv */
    case 20: return sys_rwv((long)a, b, (long)c, 1);                   /* writev */
    case 21: return sys_faccessat(AT_FDCWD, a);                        /* access */
    case 24: nx_yield(); return 0;                                     /* sched_yield */
    case 25: return sys_mremap(a, b, c, (long)d, e);
    case 28: return sys_madvise(a, b, (long)c);
    case 32: return sys_dup((long)a, 0, 0);
    case 33: return sys_dup((long)a, (long)b, 1);                      /* dup2 */
    case 35: return sys_nanosleep(1, 0, a);
    case 39: return PID;                                               /* getpid */
    case 56: return sys_clone(f, a, b, c, d, e);
    case 60: thread_exit((int)a);                                      /* exit */
    case 62:                                                           /* kill */
    case 200:                                                          /* tkill */
    case 234: {                                                        /* tgkill */
        long sig = f->nr == 234 ? (long)c : (long)b;
        if (sig == 0)
            return 0;
        if (sig < 1 || sig > 64)   /* (128 + a negative one could read as a clean exit) */
            return -EINVAL;
        char line[64];
        int n = nx_snprintf(line, sizeof line, "nanvix: killed by signal %ld", sig);
        flush_all();
        if (nx_resumed())
            nx_log(line, (size_t)n);
        nx_exit(128 + (int)sig);
    }
    case 63: return sys_uname(a);
    case 72: return sys_fcntl((long)a, (long)b, (long)c);
    case 74:                                                           /* fsync */
    case 75: return fd_get((long)a) ? 0 : -EBADF;                      /* fdatasync: every write is */
    case 77: return sys_ftruncate((long)a, (int64_t)b);
    case 79: return sys_getcwd(a, b);
    case 80: return sys_chdir(a);
    case 82: return sys_renameat(AT_FDCWD, a, AT_FDCWD, b, 0);        /* rename */
    case 83: return sys_mkdirat(AT_FDCWD, a);                          /* mkdir */
    case 84: return sys_unlinkat(AT_FDCWD, a, AT_REMOVEDIR);          /* rmdir */
    case 87: return sys_unlinkat(AT_FDCWD, a, 0);                      /* unlink */
    case 89:                                                           /* readlink */
    case 267: {                                                        /* readlinkat */
        static struct kstat scratch;
        long r = sys_fstatat(f->nr == 89 ? AT_FDCWD : (long)a, f->nr == 89 ? a : b, (uint64_t)&scratch, 0);
        return r < 0 ? r : -EINVAL;                                    /* nothing is a link */
    }
    case 95: return 022;                                               /* umask */
    case 96: {                                                         /* gettimeofday */
        if (a) {
            if (!uok(a, 16))
                return -EFAULT;
            uint64_t ns = real_ns();
            ((int64_t *)a)[0] = (int64_t)(ns / 1000000000ull);
            ((int64_t *)a)[1] = (int64_t)(ns % 1000000000ull / 1000);
        }
        return 0;
    }
    case 97: return sys_prlimit(0, (long)a, 0, b);                     /* getrlimit */
    case 99:                                                           /* sysinfo */
        if (!uok(a, 112))
            return -EFAULT;
        memset((void *)a, 0, 112);
        ((uint64_t *)a)[4] = INFO->ram_size;                           /* totalram */
        ((uint64_t *)a)[5] = nx_mem_free();                            /* freeram */
        ((uint32_t *)a)[26] = 1;                                       /* mem_unit */
        return 0;
    case 102: case 104: case 107: case 108: return UID;                /* get[e]uid, get[e]gid */
    case 110: return 0;                                                /* getppid */
    case 131: return 0;                                                /* sigaltstack */
    case 158:                                                          /* arch_prctl */
        if (a == 0x1002) {                                             /* ARCH_SET_FS */
            __asm__ volatile("wrfsbase %0" ::"r"(b));
            return 0;
        }
        if (a == 0x1003) {                                             /* ARCH_GET_FS */
            if (!uok(b, 8))
                return -EFAULT;
            __asm__ volatile("rdfsbase %0" : "=r"(*(uint64_t *)b));
            return 0;
        }
        return -EINVAL;
    case 186: return tid();                                            /* gettid */
    case 201: {                                                        /* time */
        int64_t t = (int64_t)(real_ns() / 1000000000ull);
        if (a) {
            if (!uok(a, 8))
                return -EFAULT;
            *(int64_t *)a = t;
        }
        return t;
    }
    case 202: return sys_futex(a, (long)b, c, d, e, g);
    case 204:                                                          /* sched_getaffinity */
        if (b < 8)
            return -EINVAL;
        if (!uok(c, 8))
            return -EFAULT;
        *(uint64_t *)c = 1;
        return 8;
    case 217: return sys_getdents64((long)a, b, c);
    case 218: clear_tid[nx_thread_self()] = a; return tid();           /* set_tid_address */
    case 228: return sys_clock_gettime((long)a, b);
    case 229:                                                          /* clock_getres */
        if (b) {
            if (!uok(b, 16))
                return -EFAULT;
            ((int64_t *)b)[0] = 0;
            ((int64_t *)b)[1] = 1;
        }
        return (long)a < 0 || (long)a > 11 ? -EINVAL : 0;
    case 230: return sys_nanosleep((long)a, (long)b, c);              /* clock_nanosleep */
    case 231: exit_group((int)a);
    case 257: return sys_openat((long)a, b, (long)c, (long)d);
    case 258: return sys_mkdirat((long)a, b);
    case 262: return sys_fstatat((long)a, b, c, (long)d);             /* newfstatat */
    case 263: return sys_unlinkat((long)a, b, (long)c);
    case 264: return sys_renameat((long)a, b, (long)c, d, 0);
    case 269: return sys_faccessat((long)a, b);
    case 273: return 0;                                                /* set_robust_list */
    case 292: return sys_dup((long)a, (long)b, 1);                     /* dup3 */
    case 302: return sys_prlimit((long)a, (long)b, c, d);
    case 316: return sys_renameat((long)a, b, (long)c, d, (long)e);   /* renameat2 */
    case 318:                                                          /* getrandom */
        if (b && !uok(a, b))
            return -EFAULT;
        for (uint64_t i = 0; i < b; i += 8) {
            uint64_t v = rdrand64();
            memcpy((uint8_t *)a + i, &v, b - i < 8 ? b - i : 8);
        }
        return (long)b;
    case 439: return sys_faccessat((long)a, b);                        /* faccessat2 */
    case NX_SYS_SNAPSHOT:
        flush_all();
        nx_snapshot();
        INFO->result_len = 0;   /* what the boot printed is not any invocation's result */
        result_dropped = 0;
        wall0_tsc = 0;
        INFO->linux_syscalls = INFO->linux_syscalls_out = 0;   /* count the invocation's own */
        return 0;
    case NX_SYS_RESULT:
        if (b && !uok(a, b))
            return -EFAULT;
        INFO->result_len = 0;
        result_put((const uint8_t *)a, b);
        return (long)INFO->result_len;
    case NX_SYS_REQUEST: return sys_request(a);
    }
    return -ENOSYS;
}

/* ---- boot: the program's initial stack (argc, argv, envp, auxv), as Linux lays it out -------- */

static uint64_t push_bytes(uint64_t sp, const void *p, size_t n)
{
    sp -= n;
    memcpy((void *)sp, p, n);
    return sp;
}

int nx_main(const char *input, size_t len)
{
    (void)input;
    (void)len;
    return 0;                      /* (never called: nx_linux_main is the entry) */
}

void nx_linux_main(void)
{
    const struct nx_limage *im = &nx_linux_image;
    nx_boot();
    INFO->syscall_vec = (uint64_t)nx_linux_entry;
    nx_thread_fs_switch();
    fds[0].kind = FD_INPUT;
    fds[1].kind = (im->flags & NX_LIMG_STDOUT_RESULT) ? FD_RESULT : FD_LOG;
    fds[2].kind = FD_LOG;
    fds[1].flags = O_WRONLY;
    fds[2].flags = O_WRONLY;
    fds[2].len = 1;                /* a log descriptor's stream: 0 stdout's, 1 stderr's */

    uint64_t ssize = im->stack_size;
    uint8_t *stack = nx_mmap(ssize);
    if (!stack)
        nx_exit(-NX_ENOSPC);
    uint64_t sp = (uint64_t)stack + ssize;
    uint64_t argv[64], envp[64];
    uint32_t argc = im->argc < 63 ? im->argc : 63, envc = im->envc < 63 ? im->envc : 63;
    for (uint32_t i = 0; i < argc; i++)
        argv[i] = sp = push_bytes(sp, im->argv[i], strlen(im->argv[i]) + 1);
    for (uint32_t i = 0; i < envc; i++)
        envp[i] = sp = push_bytes(sp, im->envp[i], strlen(im->envp[i]) + 1);
    uint64_t platform = sp = push_bytes(sp, "x86_64", 7);
    uint64_t rnd[2] = {rdrand64(), rdrand64()};
    uint64_t random = sp = push_bytes(sp, rnd, 16);
    uint64_t aux[][2] = {
        {3, im->phdr}, {4, im->phent}, {5, im->phnum}, {6, PAGE}, {9, im->entry},  /* AT_PHDR .. AT_ENTRY */
        {11, UID}, {12, UID}, {13, UID}, {14, UID}, {23, 0}, {17, 100},             /* AT_UID .. AT_CLKTCK */
        {25, random}, {15, platform}, {16, 0}, {0, 0},                            /* AT_RANDOM, AT_PLATFORM */
    };
    uint64_t words = 1 + argc + 1 + envc + 1 + sizeof aux / 8;
    sp &= ~15ull;
    if (words % 2)
        sp -= 8;                   /* argc lands 16-byte aligned */
    sp = push_bytes(sp, aux, sizeof aux);
    uint64_t zero = 0;
    sp = push_bytes(sp, &zero, 8);
    sp = push_bytes(sp, envp, envc * 8);
    sp = push_bytes(sp, &zero, 8);
    sp = push_bytes(sp, argv, argc * 8);
    uint64_t n = argc;
    sp = push_bytes(sp, &n, 8);

    if (im->flags & NX_LIMG_SNAPSHOT_AT_ENTRY)
        nx_snapshot();
    INFO->linux_syscalls = INFO->linux_syscalls_out = 0;
    nx_linux_enter(im->entry, sp);
}
