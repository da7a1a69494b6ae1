/* The nanvix user-VM microkernel: threads and memory, and nothing else.
 *
 * It runs at CPL3 in long mode on page tables the host laid out (this machine's nested KVM runs
 * only CPL3 code natively). There are no interrupts and no drivers: every I/O call becomes a
 * request on the channel to the tenant's system VM. A fault has no handler, so it triple-faults
 * and the host sees a crashed guest. Every loop on the fast path is short: count instructions.
 */
#include "nanvix.h"

#define INFO ((struct nx_info *)NX_GPA_INFO)
#define RING ((struct nx_ring_hdr *)NX_GPA_CHANNEL)
#define SQ ((struct nx_sqe *)(NX_GPA_CHANNEL + NX_SQ_OFF))
#define CQ ((struct nx_cqe *)(NX_GPA_CHANNEL + NX_CQ_OFF))
#define DATA ((uint8_t *)(NX_GPA_CHANNEL + NX_DATA_OFF))
#define MASK (NX_RING_ENTRIES - 1)

#define barrier() __asm__ volatile("" ::: "memory")
#define fence() __atomic_thread_fence(__ATOMIC_SEQ_CST) /* mfence: store -> load order */

extern char _end[];
void nx_switch(uint64_t *save_rsp, uint64_t new_rsp);
void nx_thread_trampoline(void);

uint64_t nx_left_guest; /* hypercalls and requests so far: what left this VM */

uint64_t nx_hypercall(uint32_t nr, uint64_t a0, uint64_t a1)
{
    uint32_t ret;
    nx_left_guest++;
    __asm__ volatile("inl %1, %%eax"
                     : "=a"(ret)
                     : "i"(NX_PORT_HYPERCALL), "a"(nr), "D"(a0), "S"(a1)
                     : "memory");
    return ret;
}

uint64_t nx_cycles(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

/* ==== memory: a frame allocator over regions of 4 KiB frames ================================= */

#define MAX_REGIONS (1 + NX_HOTADD_MAX)
struct region {
    uint64_t base;      /* first frame's address */
    uint32_t frames;    /* frames in the region */
    uint32_t free;
    uint32_t meta;      /* the bitmap's own frames, at the start */
    uint32_t clean;     /* frames [clean, frames) may have been written; those below never were
                         * (still zero from the snapshot or the host), so handing them out needs no
                         * memset and leaves the snapshot's untouched pages unshared */
    uint64_t *bits;     /* 1 = used; kept in the region's own first frames */
};
static struct region regions[MAX_REGIONS];
static int nregions;
static uint64_t brk_cur, brk_lo; /* the brk heap grows up from the first region's start */
static uint64_t brk_hw;          /* the highest break so far: the heap below it may be dirty */

static int bit(struct region *r, uint32_t i) { return (r->bits[i / 64] >> (i % 64)) & 1; }
static void setbits(struct region *r, uint32_t i, uint32_t n, int v)
{
    for (uint32_t k = i; k < i + n; k++) {
        if (v)
            r->bits[k / 64] |= 1ull << (k % 64);
        else
            r->bits[k / 64] &= ~(1ull << (k % 64));
    }
    r->free = v ? r->free - n : r->free + n;
}

static void region_add(uint64_t base, uint64_t size)
{
    struct region *r = &regions[nregions++];
    uint32_t frames = (uint32_t)(size / NX_PAGE_4K);
    uint32_t meta = (frames / 8 + NX_PAGE_4K - 1) / NX_PAGE_4K;
    r->base = base;
    r->frames = frames;
    r->free = frames;
    r->meta = meta;
    r->clean = frames;
    r->bits = (uint64_t *)base;
    memset(r->bits, 0, meta * NX_PAGE_4K);
    setbits(r, 0, meta, 1);
}

/* Zero frames [i, i + n) of r, except those never written: a frame is clean when it lies below
 * r->clean (top-down allocations lower it) and, in the first region, at or above the highest
 * break so far (the brk heap grows up from below). */
static uint32_t brk_hw_frame(struct region *r);
static void zero_frames(struct region *r, uint32_t i, uint32_t n)
{
    uint32_t lo = brk_hw_frame(r), end = i + n;
    uint32_t a = i < lo ? (end < lo ? end : lo) : i;   /* [i, a): under the break's high mark */
    if (a > i)
        memset((void *)(r->base + (uint64_t)i * NX_PAGE_4K), 0, (size_t)(a - i) * NX_PAGE_4K);
    uint32_t b = a > r->clean ? a : r->clean;          /* [b, end): at or above the clean mark */
    if (b < end)
        memset((void *)(r->base + (uint64_t)b * NX_PAGE_4K), 0, (size_t)(end - b) * NX_PAGE_4K);
}

/* n contiguous frames, searched from the top of each region down (brk grows from below). */
static uint32_t brk_hw_frame(struct region *r)
{
    return r == &regions[0] && brk_hw > r->base ? (uint32_t)((brk_hw - r->base + NX_PAGE_4K - 1) / NX_PAGE_4K) : 0;
}

static void *frames_alloc(uint32_t n)
{
    for (int tries = 0; tries < 2; tries++) {
        for (int ri = nregions - 1; ri >= 0; ri--) {
            struct region *r = &regions[ri];
            uint32_t run = 0, floor = 0;
            if (r->free < n)
                continue;
            if (ri == 0)
                floor = (uint32_t)((brk_cur - r->base + NX_PAGE_4K - 1) / NX_PAGE_4K);
            for (uint32_t i = r->frames; i-- > floor;) {
                if (i % 64 == 63 && i - 63 >= floor && r->bits[i / 64] == ~0ull) {
                    run = 0;    /* a full word: skip its 64 frames at once */
                    i -= 63;
                    continue;
                }
                run = bit(r, i) ? 0 : run + 1;
                if (run == n) {
                    setbits(r, i, n, 1);
                    zero_frames(r, i, n);
                    if (i < r->clean)
                        r->clean = i;
                    return (void *)(r->base + (uint64_t)i * NX_PAGE_4K);
                }
            }
        }
        /* Out of frames: ask the host for another 2 MiB page (it may refuse: quota). */
        uint32_t pages = (uint32_t)(((uint64_t)n * NX_PAGE_4K + NX_PAGE_2M - 1) / NX_PAGE_2M);
        if (nregions + (int)pages > MAX_REGIONS)
            return 0;
        uint64_t gpa = nx_hypercall(NX_HC_GROW, pages, 0);
        if (!gpa)
            return 0;
        /* The host maps the pages it grants at consecutive addresses: one region, so a run
         * that spans several of them can be found by the retry. */
        region_add(gpa, (uint64_t)pages * NX_PAGE_2M);
    }
    return 0;
}

static struct region *region_of(uint64_t a)
{
    for (int ri = 0; ri < nregions; ri++) {
        struct region *r = &regions[ri];
        if (a >= r->base && a < r->base + (uint64_t)r->frames * NX_PAGE_4K)
            return r;
    }
    return 0;
}

static void frames_free(void *p, uint32_t n)
{
    struct region *r = region_of((uint64_t)p);
    if (r)
        setbits(r, (uint32_t)(((uint64_t)p - r->base) / NX_PAGE_4K), n, 0);
}

/* Frames [p, p + n pages) as the allocator sees them: 1 if all of them lie in one region, past
 * its bitmap and the brk heap, and are all in use (want_used) or all free (!want_used). */
int nx_frames_are(uint64_t p, uint64_t n, int want_used)
{
    struct region *r = region_of(p);
    if (!r || p % NX_PAGE_4K || n == 0)
        return 0;
    uint64_t i = (p - r->base) / NX_PAGE_4K;
    if (i + n > r->frames || i < r->meta || (r == &regions[0] && p < brk_cur))
        return 0;
    for (uint64_t k = i; k < i + n; k++)
        if (bit(r, (uint32_t)k) != want_used)
            return 0;
    return 1;
}

/* Take the free frames [p, p + n pages) (checked with nx_frames_are), zeroed. */
void nx_frames_take(uint64_t p, uint64_t n)
{
    struct region *r = region_of(p);
    uint32_t i = (uint32_t)((p - r->base) / NX_PAGE_4K);
    setbits(r, i, (uint32_t)n, 1);
    zero_frames(r, i, (uint32_t)n);
    if (i < r->clean)
        r->clean = i;
}

/* Guest memory a program may name: RAM and the pages the host added (not the low slot, not the
 * channel page). */
int nx_mem_ok(uint64_t p, uint64_t len)
{
    uint64_t end = p + len;
    if (end < p)
        return 0;
    if (p >= INFO->ram_base && end <= INFO->ram_base + INFO->ram_size)
        return 1;
    for (int ri = 1; ri < nregions; ri++)
        if (p >= regions[ri].base && end <= regions[ri].base + (uint64_t)regions[ri].frames * NX_PAGE_4K)
            return 1;
    return 0;
}

void *nx_mmap(size_t len)
{
    return len ? frames_alloc((uint32_t)((len + NX_PAGE_4K - 1) / NX_PAGE_4K)) : 0;
}

void nx_munmap(void *p, size_t len)
{
    if (p && len)
        frames_free(p, (uint32_t)((len + NX_PAGE_4K - 1) / NX_PAGE_4K));
}

void *nx_sbrk(long delta)
{
    struct region *r = &regions[0];
    uint64_t old = brk_cur, nu = brk_cur + delta;
    if (nu < brk_lo || nu > r->base + (uint64_t)r->frames * NX_PAGE_4K)
        return (void *)-1;     /* (checked before any frame index is computed from it) */
    /* every frame the new break covers must be free (frames are taken from the top) */
    uint32_t from = (uint32_t)((old - r->base + NX_PAGE_4K - 1) / NX_PAGE_4K);
    uint32_t to = (uint32_t)((nu - r->base + NX_PAGE_4K - 1) / NX_PAGE_4K);
    if (to > r->frames)
        return (void *)-1;
    for (uint32_t i = from; i < to; i++)
        if (bit(r, i))
            return (void *)-1;
    if (to > from) {
        setbits(r, from, to - from, 1);
        zero_frames(r, from, to - from); /* new heap reads as zero, as Linux's brk promises */
    } else if (from > to)
        setbits(r, to, from - to, 0);
    brk_cur = nu;
    if (nu > brk_hw)
        brk_hw = nu;
    return (void *)old;
}

size_t nx_mem_free(void)
{
    size_t f = 0;
    for (int i = 0; i < nregions; i++)
        f += regions[i].free;
    return f * NX_PAGE_4K;
}

/* ==== threads ================================================================================ */

#define MAX_THREADS 32
#define STACK_FRAMES 8 /* 32 KiB */
enum { T_FREE, T_RUNNABLE, T_IO, T_JOIN, T_DONE, T_WAIT };
struct thread {
    uint64_t rsp;
    int state;
    int joiner;         /* thread waiting in join, or -1 */
    int waits_for;      /* T_JOIN: the thread joined */
    void *(*fn)(void *);
    void *arg, *ret;
    void *stack;
    uint64_t fsbase;                /* its TLS pointer, when the Linux layer switches them */
    const volatile void *wait_key;  /* T_WAIT: what it waits on (nx_wait) */
    uint64_t wait_until;            /* T_WAIT: a cycle count to give up at, 0 = never */
    int timed_out;
};
static struct thread threads[MAX_THREADS];
static int current;
static int timed_waiters;   /* threads in T_WAIT with a deadline (schedule looks at them) */
static int switch_fs;       /* the Linux layer's threads each have their own FS base (TLS) */

/* From now on every thread switch saves and restores the FS base (needs CR4.FSGSBASE). */
void nx_thread_fs_switch(void) { switch_fs = 1; }
void nx_thread_set_fs(int id, uint64_t base) { threads[id].fsbase = base; }

int nx_thread_self(void) { return current; }

static void idle_wait(void);
static void reap(void);

/* Pick the next runnable thread after the current one and switch to it. With nothing runnable,
 * wait for a completion (which may make an I/O-blocked thread runnable). */
static void schedule(void)
{
    for (;;) {
        reap();
        if (timed_waiters) {
            uint64_t now = nx_cycles();
            for (int t = 0; t < MAX_THREADS; t++)
                if (threads[t].state == T_WAIT && threads[t].wait_until && now >= threads[t].wait_until) {
                    threads[t].state = T_RUNNABLE;
                    threads[t].timed_out = 1;
                }
        }
        for (int k = 1; k <= MAX_THREADS; k++) {
            int t = (current + k) % MAX_THREADS;
            if (threads[t].state == T_RUNNABLE) {
                if (t != current) {
                    int prev = current;
                    current = t;
                    if (switch_fs) {
                        __asm__ volatile("rdfsbase %0" : "=r"(threads[prev].fsbase));
                        __asm__ volatile("wrfsbase %0" ::"r"(threads[t].fsbase));
                    }
                    nx_switch(&threads[prev].rsp, threads[t].rsp);
                }
                return;
            }
        }
        idle_wait();
    }
}

void nx_yield(void) { schedule(); }

void nx_thread_start(struct thread *t)
{
    t->ret = t->fn(t->arg);
    t->state = T_DONE;
    if (t->joiner >= 0 && threads[t->joiner].state == T_JOIN)
        threads[t->joiner].state = T_RUNNABLE;
    schedule();
}

int nx_thread_create(nx_thread_t *out, void *(*fn)(void *), void *arg)
{
    int id = -1;
    for (int i = 1; i < MAX_THREADS; i++)
        if (threads[i].state == T_FREE) {
            id = i;
            break;
        }
    if (id < 0)
        return -NX_ENOSPC;
    struct thread *t = &threads[id];
    t->stack = frames_alloc(STACK_FRAMES);
    if (!t->stack)
        return -NX_ENOSPC;
    uint64_t *sp = (uint64_t *)((uint8_t *)t->stack + STACK_FRAMES * NX_PAGE_4K);
    *--sp = 0;                                  /* keeps rsp 16-byte aligned at the call */
    *--sp = (uint64_t)nx_thread_trampoline;     /* nx_switch returns here */
    *--sp = 0;                                  /* rbp */
    *--sp = 0;                                  /* rbx */
    *--sp = (uint64_t)t;                        /* r12 */
    *--sp = 0;                                  /* r13 */
    *--sp = 0;                                  /* r14 */
    *--sp = 0;                                  /* r15 */
    t->rsp = (uint64_t)sp;
    t->fn = fn;
    t->arg = arg;
    t->ret = 0;
    t->joiner = -1;
    t->state = T_RUNNABLE;
    *out = id;
    return 0;
}

int nx_thread_join(nx_thread_t id, void **ret)
{
    if (id <= 0 || id >= MAX_THREADS || id == current || threads[id].state == T_FREE)
        return -NX_EINVAL;
    struct thread *t = &threads[id];
    if (t->joiner >= 0 && t->joiner != current)
        return -NX_EINVAL;
    while (t->state != T_DONE) {
        t->joiner = current;
        threads[current].state = T_JOIN;
        threads[current].waits_for = id;
        schedule();
    }
    if (ret)
        *ret = t->ret;
    frames_free(t->stack, STACK_FRAMES);
    t->state = T_FREE;
    return 0;
}

/* Block the current thread until nx_wake(key) or, when until != 0, the cycle counter passes
 * until. Returns 0 when woken, -1 on the deadline. (Linux futexes sit on this.) */
int nx_wait(const volatile void *key, uint64_t until)
{
    struct thread *t = &threads[current];
    t->wait_key = key;
    t->wait_until = until;
    t->timed_out = 0;
    t->state = T_WAIT;
    timed_waiters += until != 0;
    while (t->state == T_WAIT)
        schedule();
    timed_waiters -= until != 0;
    return t->timed_out ? -1 : 0;
}

/* Wake up to n threads waiting on key; returns how many. */
int nx_wake(const volatile void *key, int n)
{
    int woken = 0;
    for (int k = 1; k <= MAX_THREADS && woken < n; k++) {
        struct thread *t = &threads[(current + k) % MAX_THREADS];
        if (t->state == T_WAIT && t->wait_key == key) {
            t->state = T_RUNNABLE;
            woken++;
        }
    }
    return woken;
}

/* Move up to n threads waiting on key to wait on to instead; returns how many. */
int nx_requeue(const volatile void *key, const volatile void *to, int n)
{
    int moved = 0;
    for (int i = 0; i < MAX_THREADS && moved < n; i++)
        if (threads[i].state == T_WAIT && threads[i].wait_key == key) {
            threads[i].wait_key = to;
            moved++;
        }
    return moved;
}

/* A thread that starts by switching to rsp, where the caller laid out what nx_switch pops (six
 * callee-saved registers, then the address to return to). Returns its id or -NX_ENOSPC. */
int nx_thread_spawn(uint64_t rsp)
{
    for (int i = 1; i < MAX_THREADS; i++)
        if (threads[i].state == T_FREE) {
            threads[i].rsp = rsp;
            threads[i].joiner = -1;
            threads[i].stack = 0;
            threads[i].fsbase = 0;
            threads[i].state = T_RUNNABLE;
            return i;
        }
    return -NX_ENOSPC;
}

/* The current thread ends for good (no join): its slot is free once it has switched away. */
__attribute__((noreturn)) void nx_thread_exit(void)
{
    threads[current].state = T_FREE;
    schedule();
    __builtin_unreachable();
}

int nx_threads_live(void)
{
    int n = 0;
    for (int i = 0; i < MAX_THREADS; i++)
        n += threads[i].state != T_FREE && threads[i].state != T_DONE;
    return n;
}

/* ==== the channel: requests and completions =================================================== */

/* One request slot per ring entry: in flight <= NX_RING_ENTRIES, so neither ring can overflow. */
struct req {
    int busy, done, thread;
    uint32_t gen, out_len;
    int64_t result;
};
static struct req reqs[NX_RING_ENTRIES];
static uint32_t gen_counter;
static uint32_t sq_tail, cq_head; /* private copies of the indices this side writes */

/* Take the completion at cq_head (the caller saw one posted) and hand cq_head back to the host.
 * The guest validates what the host wrote, too: returns the request slot it answers, or -1 when
 * it answers none of ours. seen, when not null, gets the completion as read (always inlined: on
 * the fast path seen is 0 and that copy compiles away). */
static inline __attribute__((always_inline)) int take_completion(struct nx_cqe *seen)
{
    struct nx_cqe *c = &CQ[cq_head & MASK];
    uint64_t ud = c->user_data;
    uint32_t slot = (uint32_t)(ud & 0xff), gen = (uint32_t)(ud >> 8);
    int took = -1;
    if (slot < NX_RING_ENTRIES && reqs[slot].busy && !reqs[slot].done && reqs[slot].gen == gen) {
        struct req *r = &reqs[slot];
        r->result = c->result;
        r->out_len = c->out_len <= NX_DATA_SLOT ? c->out_len : 0;
        r->done = 1;
        if (threads[r->thread].state == T_IO)
            threads[r->thread].state = T_RUNNABLE;
        took = (int)slot;
    }
    if (seen) {
        seen->user_data = ud;
        seen->result = c->result;
    }
    cq_head++;
    barrier();
    RING->cq_head = cq_head;
    return took;
}

/* Take every posted completion. */
static void reap(void)
{
    uint32_t tail = RING->cq_tail;
    barrier();
    while (cq_head != tail)
        take_completion(0);
}

/* One completion, for a guest that drives its channel a step at a time (the refinement
 * harness's stepper): -2 when none is posted, else as take_completion. */
int nx_reap_one(struct nx_cqe *seen)
{
    if (RING->cq_tail == cq_head)
        return -2;
    barrier();
    return take_completion(seen);
}

/* Arm NOTIFY_ME, re-check (so a completion posted in between is not missed), and park the vCPU
 * in the host until one comes or `ns` pass (0: no limit). */
static inline __attribute__((always_inline)) void park(uint64_t ns)
{
    RING->cq_flags = NX_CQ_NOTIFY_ME;
    fence();
    if (RING->cq_tail == cq_head)
        nx_hypercall(NX_HC_WAIT, ns, 0);
    RING->cq_flags = 0;
}

void nx_park(void) { park(0); }

/* Nothing to run: spin on the completion ring for a moment (or until the first sleeper's
 * deadline), then park until a completion or that deadline: a sleeper costs one exit, not a
 * vCPU spinning on its clock. */
static void idle_wait(void)
{
    int blocked_io = 0;
    uint64_t soonest = ~0ull;   /* the first sleeper's deadline (cycles) */
    for (int i = 0; i < MAX_THREADS; i++) {
        blocked_io |= threads[i].state == T_IO;
        if (threads[i].state == T_WAIT && threads[i].wait_until && threads[i].wait_until < soonest)
            soonest = threads[i].wait_until;
    }
    if (!blocked_io && soonest == ~0ull)
        nx_exit(-NX_EINVAL); /* every thread waits in join or forever: a deadlock */
    for (int spin = 0; spin < 20000; spin++) {
        if (RING->cq_tail != cq_head)
            return;
        if (spin % 64 == 0 && soonest != ~0ull && nx_cycles() >= soonest)
            return;         /* (schedule() wakes the sleeper) */
        __asm__ volatile("pause");
    }
    uint64_t now = nx_cycles(), ns = 0;
    if (soonest != ~0ull) {
        uint64_t khz = INFO->tsc_khz ? INFO->tsc_khz : 1000000, d = soonest > now ? soonest - now : 0;
        if (!d)
            return;
        ns = d / khz * 1000000 + d % khz * 1000000 / khz + 1;   /* (no overflow; at least 1: a limit) */
    }
    park(ns);
}

/* A free request slot, or -1 when all of them are in flight. */
static inline __attribute__((always_inline)) int free_slot(void)
{
    for (int i = 0; i < (int)NX_RING_ENTRIES; i++)
        if (!reqs[i].busy)
            return i;
    return -1;
}

/* Fill the free request slot `slot`, post its entry and ring the doorbell if the system VM
 * sleeps. Returns the entry's user_data. */
static inline __attribute__((always_inline)) uint64_t post(int slot, uint32_t opcode, uint32_t flags,
        const void *name, uint32_t name_len, const void *val, uint32_t val_len, uint32_t out_cap, uint64_t arg)
{
    struct req *r = &reqs[slot];
    nx_left_guest++;
    r->busy = 1;
    r->done = 0;
    r->thread = current;
    r->gen = ++gen_counter & 0xffffff;
    uint32_t off = (uint32_t)slot * NX_DATA_SLOT;
    if (name_len)
        memcpy(DATA + off, name, name_len);
    if (val_len)
        memcpy(DATA + off + name_len, val, val_len);

    uint64_t user_data = (uint64_t)slot | ((uint64_t)r->gen << 8);
    struct nx_sqe *e = &SQ[sq_tail & MASK];
    e->opcode = opcode;
    e->flags = flags;
    e->user_data = user_data;
    e->in_off = off;
    e->in_len = name_len + val_len;
    e->out_off = off;
    e->out_cap = out_cap;
    e->name_len = name_len;
    e->arg = arg;
    barrier();
    RING->sq_tail = ++sq_tail;
    fence();
    if (RING->sq_flags & NX_SQ_NEED_WAKEUP)
        __asm__ volatile("outb %%al, %0" ::"i"(NX_PORT_DOORBELL), "a"(0));
    return user_data;
}

/* Wait for slot's answer (the calling thread blocks on I/O meanwhile), copy its output, free the
 * slot; returns the request's result. */
static inline __attribute__((always_inline)) long finish(int slot, void *out, uint32_t out_cap, uint32_t *out_len)
{
    struct req *r = &reqs[slot];
    while (!r->done) {
        threads[current].state = T_IO;
        schedule();
        reap();
    }
    threads[current].state = T_RUNNABLE;
    uint32_t n = r->out_len < out_cap ? r->out_len : out_cap;
    if (out && n)
        memcpy(out, DATA + (uint32_t)slot * NX_DATA_SLOT, n);
    if (out_len)
        *out_len = n;
    long res = (long)r->result;
    r->busy = 0;
    return res;
}

long nx_request(uint32_t opcode, uint32_t flags, const void *name, uint32_t name_len,
                const void *val, uint32_t val_len, void *out, uint32_t out_cap, uint64_t arg,
                uint32_t *out_len)
{
    if ((uint64_t)name_len + val_len > NX_DATA_SLOT || out_cap > NX_DATA_SLOT)
        return -NX_E2BIG;
    int slot;
    while ((slot = free_slot()) < 0)
        schedule(); /* all slots in flight: let completions come in */
    post(slot, opcode, flags, name, name_len, val, val_len, out_cap, arg);
    return finish(slot, out, out_cap, out_len);
}

/* nx_request in two halves, for a guest that drives its channel a step at a time (the
 * refinement harness's stepper). nx_post posts without waiting: the entry's user_data, or
 * -NX_E2BIG, or -NX_ENOSPC when every slot is in flight. nx_finish(slot) is the wait. */
long nx_post(uint32_t opcode, uint32_t flags, const void *name, uint32_t name_len,
             const void *val, uint32_t val_len, uint32_t out_cap, uint64_t arg)
{
    if ((uint64_t)name_len + val_len > NX_DATA_SLOT || out_cap > NX_DATA_SLOT)
        return -NX_E2BIG;
    int slot = free_slot();
    if (slot < 0)
        return -NX_ENOSPC;
    return (long)post(slot, opcode, flags, name, name_len, val, val_len, out_cap, arg);
}

long nx_finish(int slot, void *out, uint32_t out_cap, uint32_t *out_len)
{
    if (slot < 0 || slot >= (int)NX_RING_ENTRIES || !reqs[slot].busy)
        return -NX_EINVAL;
    return finish(slot, out, out_cap, out_len);
}

/* ==== boot ===================================================================================== */

void nx_result(const void *data, size_t len)
{
    if (len > NX_RESULT_MAX)
        len = NX_RESULT_MAX;
    memcpy(INFO->result, data, len);
    INFO->result_len = (uint32_t)len;
}

void nx_exit(int status)
{
    INFO->exit_status = status;
    for (;;)
        nx_hypercall(NX_HC_EXIT, (uint64_t)(int64_t)status, 0);
}

static uint64_t boot_tsc;

uint64_t nx_uptime_ns(void)
{
    uint64_t khz = INFO->tsc_khz ? INFO->tsc_khz : 1000000;
    return (nx_cycles() - boot_tsc) * 1000000ull / khz;
}

/* Memory and the first thread. */
void nx_boot(void)
{
    uint64_t first = ((uint64_t)_end + NX_PAGE_4K - 1) & ~(NX_PAGE_4K - 1);
    region_add(first, INFO->ram_base + INFO->ram_size - first);
    brk_lo = brk_cur = brk_hw = first + (uint64_t)regions[0].meta * NX_PAGE_4K;
    threads[0].state = T_RUNNABLE;
    threads[0].joiner = -1;
}

static int resumed;

int nx_resumed(void) { return resumed; }

/* The host snapshots the VM here; every invocation resumes from this point, with a fresh
 * channel and its input written. */
void nx_snapshot(void)
{
    if (resumed)
        return;
    nx_hypercall(NX_HC_READY, 0, 0);
    resumed = 1;
    boot_tsc = nx_cycles();
    sq_tail = RING->sq_tail;
    cq_head = RING->cq_head;
}

void nx_kernel_main(void)
{
    nx_boot();
    nx_snapshot();
    uint32_t n = INFO->input_len <= NX_INPUT_MAX ? INFO->input_len : NX_INPUT_MAX;
    int status = nx_main((const char *)INFO->input, n);
    nx_exit(status);
}
