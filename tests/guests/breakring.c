/* breakring: writes an index no honest guest can produce into the channel header, then rings
 * the doorbell. Input "sq": sq_tail jumps 1000 ahead. Input "cq": one valid NOP is posted while
 * cq_head is set 1000 past cq_tail. The system VM must mark the channel broken and keep serving
 * every other channel. Returns "done" (it does no more I/O: its channel is dead). */
#include <nanvix.h>

#define RING ((struct nx_ring_hdr *)NX_GPA_CHANNEL)
#define SQ ((struct nx_sqe *)(NX_GPA_CHANNEL + NX_SQ_OFF))

int nx_main(const char *input, size_t len)
{
    if (len == 2 && !memcmp(input, "cq", 2)) {
        uint32_t t = RING->sq_tail;
        struct nx_sqe *e = &SQ[t & (NX_RING_ENTRIES - 1)];
        memset(e, 0, sizeof *e);
        e->opcode = NX_OP_NOP;
        e->user_data = 77;
        RING->cq_head = RING->cq_tail + 1000;
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        RING->sq_tail = t + 1;
    } else {
        RING->sq_tail = RING->sq_tail + 1000;
    }
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    __asm__ volatile("outb %%al, %0" ::"i"(NX_PORT_DOORBELL), "a"(0));
    nx_result("done", 4);
    return 0;
}
