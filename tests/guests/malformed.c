/* malformed: posts every kind of malformed request and checks each gets an error completion,
 * then posts valid ones in the same invocation, which must succeed.
 *
 * Phase 1 goes through nx_request (the kernel's own path): an unknown opcode and an over-long
 * name. Phase 2 writes raw entries straight into the submission ring (the guest owns the channel
 * page, so nothing stops it): offsets and lengths outside the data area, a length that wraps
 * 32 bits, name_len > in_len. From then on the microkernel's private ring indices are stale, so
 * this function does no more SDK I/O; the valid requests at the end are raw too.
 *
 * Result: "<r1>,<r2>,...|<kv_get bytes>" with one completion result per request, in order. */
#include <nanvix.h>

#define RING ((struct nx_ring_hdr *)NX_GPA_CHANNEL)
#define SQ ((struct nx_sqe *)(NX_GPA_CHANNEL + NX_SQ_OFF))
#define CQ ((struct nx_cqe *)(NX_GPA_CHANNEL + NX_CQ_OFF))
#define DATA ((uint8_t *)(NX_GPA_CHANNEL + NX_DATA_OFF))
#define MASK (NX_RING_ENTRIES - 1)

static char res[2048];
static size_t rlen;
static uint32_t sq_tail, cq_head;
static uint64_t next_ud = 0x5eed0000;

static void put_num(long v)
{
    rlen += (size_t)nx_snprintf(res + rlen, sizeof res - rlen, rlen ? ",%ld" : "%ld", v);
}

/* Submit one raw entry and wait for its completion; returns the result (and out_len). */
static long raw(uint32_t opcode, uint32_t flags, uint32_t in_off, uint32_t in_len, uint32_t out_off,
                uint32_t out_cap, uint32_t name_len, uint64_t arg, uint32_t *out_len)
{
    struct nx_sqe *e = &SQ[sq_tail & MASK];
    uint64_t ud = next_ud++;
    e->opcode = opcode;
    e->flags = flags;
    e->user_data = ud;
    e->in_off = in_off;
    e->in_len = in_len;
    e->out_off = out_off;
    e->out_cap = out_cap;
    e->name_len = name_len;
    e->arg = arg;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    RING->sq_tail = ++sq_tail;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (RING->sq_flags & NX_SQ_NEED_WAKEUP)
        __asm__ volatile("outb %%al, %0" ::"i"(NX_PORT_DOORBELL), "a"(0));
    for (;;) {
        for (int spin = 0; spin < 20000 && RING->cq_tail == cq_head; spin++)
            __asm__ volatile("pause");
        if (RING->cq_tail != cq_head)
            break;
        RING->cq_flags = NX_CQ_NOTIFY_ME;
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        if (RING->cq_tail == cq_head)
            nx_hypercall(NX_HC_WAIT, 0, 0);
        RING->cq_flags = 0;
    }
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    struct nx_cqe *c = &CQ[cq_head & MASK];
    long r = c->user_data == ud ? (long)c->result : -1000; /* -1000: a wrong or reordered answer */
    if (out_len)
        *out_len = c->out_len;
    RING->cq_head = ++cq_head;
    return r;
}

int nx_main(const char *input, size_t len)
{
    static char longname[NX_NAME_MAX + 10];
    memset(longname, 'n', sizeof longname);

    /* phase 1: through the kernel's request path */
    put_num(nx_request(NX_OP_COUNT, 0, 0, 0, 0, 0, 0, 0, 0, 0));              /* -ENOSYS */
    put_num(nx_request(0xdeadbeef, 0, 0, 0, 0, 0, 0, 0, 0, 0));              /* -ENOSYS */
    put_num(nx_request(NX_OP_KV_PUT, 0, longname, NX_NAME_MAX + 1, "v", 1, 0, 0, 0, 0)); /* -E2BIG */
    put_num(nx_kv_put("before", "1", 1));                                       /* 1 */

    /* phase 2: raw entries; every request is complete, so the shared indices are current */
    sq_tail = RING->sq_tail;
    cq_head = RING->cq_head;
    const uint32_t DS = (uint32_t)NX_DATA_SIZE;
    put_num(raw(0xffffffffu, 0, 0, 0, 0, 0, 0, 0, 0));                          /* -ENOSYS */
    put_num(raw(NX_OP_KV_GET, 0, DS, 1, 0, 0, 0, 0, 0));                        /* in_off past the end */
    put_num(raw(NX_OP_KV_GET, 0, DS - 4, 8, 0, 0, 4, 0, 0));                    /* input straddles the end */
    put_num(raw(NX_OP_KV_GET, 0, 0xffffffffu, 0xffffffffu, 0, 0, 0, 0, 0));     /* in_off + in_len wraps u32 */
    put_num(raw(NX_OP_KV_GET, 0, 16, 0x10, 0, 0, 0x11, 0, 0));                   /* name_len > in_len */
    put_num(raw(NX_OP_FILE_READ, 0, 0, 4, DS, 1, 4, 0, 0));                     /* out_off past the end */
    put_num(raw(NX_OP_FILE_READ, 0, 0, 4, 16, 0xffffffffu, 4, 0, 0));           /* out_cap too big */
    put_num(raw(NX_OP_FILE_READ, 0, 0, 4, 0xfffffff0u, 0x20, 4, 0, 0));         /* out_off + out_cap wraps */
    memset(DATA, 'k', 300);
    put_num(raw(NX_OP_KV_GET, 0, 0, 300, 0, 0, 300, 0, 0));                     /* name too long: -E2BIG */

    /* valid requests on the same channel: put then get "rawkey" */
    memcpy(DATA, "rawkeyhello", 11);
    put_num(raw(NX_OP_KV_PUT, 0, 0, 11, 0, 0, 6, 0, 0));                        /* 5 */
    memcpy(DATA + 4096, "rawkey", 6);
    uint32_t got = 0;
    put_num(raw(NX_OP_KV_GET, 0, 4096, 6, 8192, 64, 6, 0, &got));               /* 5 */
    rlen += (size_t)nx_snprintf(res + rlen, sizeof res - rlen, "|");
    if (got <= 64) {
        memcpy(res + rlen, DATA + 8192, got);
        rlen += got;
    }
    nx_result(res, rlen);
    return 0;
}
