/* The doorbell floor of `nanvix bench`: the least a system VM can be. A host process in C that
 * serves one channel the way the system VM's loop does (answer what is posted; poll 50 us after
 * the last answer; then arm NEED_WAKEUP, look once more, and sleep on the doorbell eventfd), and
 * answers every request with 0. The same guest round trip against it shows what the kernel's
 * wake-up path costs here, apart from anything nanvix adds.
 * Usage: floor_server CHANNEL_FD DOORBELL_FD (both inherited). */
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "nanvix_abi.h"

#define POLL_NS 50000ull

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    int chan = atoi(argv[1]), bell = atoi(argv[2]);
    char *page = mmap(NULL, NX_CHANNEL_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, chan, 0);
    if (page == MAP_FAILED)
        return 1;
    volatile struct nx_ring_hdr *h = (volatile struct nx_ring_hdr *)page;
    volatile struct nx_sqe *sq = (volatile struct nx_sqe *)(page + NX_SQ_OFF);
    volatile struct nx_cqe *cq = (volatile struct nx_cqe *)(page + NX_CQ_OFF);
    uint32_t head = h->sq_head, tail = h->cq_tail;
    for (;;) {
        uint64_t idle_since = now_ns();
        while (now_ns() - idle_since < POLL_NS) {
            while (h->sq_tail != head && tail - h->cq_head < NX_RING_ENTRIES) {
                volatile struct nx_cqe *c = &cq[tail & (NX_RING_ENTRIES - 1)];
                c->user_data = sq[head & (NX_RING_ENTRIES - 1)].user_data;
                c->result = 0;
                c->out_len = 0;
                c->flags = 0;
                head++;
                tail++;
                h->sq_head = head;
                __atomic_thread_fence(__ATOMIC_SEQ_CST);
                h->cq_tail = tail;
                idle_since = now_ns();
            }
            __builtin_ia32_pause();
        }
        h->sq_flags |= NX_SQ_NEED_WAKEUP;
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        if (h->sq_tail == head) {
            uint64_t v;
            if (read(bell, &v, sizeof v) < 0)
                return 0;  /* the bench closed it: done */
        }
        h->sq_flags &= ~NX_SQ_NEED_WAKEUP;
    }
}
