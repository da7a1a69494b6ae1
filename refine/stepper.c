/* The stepper: a guest that does one action per command, for the refinement harness.
 *
 * It asks the host for its next command (NX_HC_COMMAND; operands in the info block) and performs
 * exactly that action on its channel, then asks again. So a harness can drive a real user VM one
 * spec operation at a time: submit, deliver, block, scribble over its own ring like a hostile
 * guest, exit, crash, loop, grow. Results go back in command_arg[].
 *
 * An honest guest's actions go through the microkernel's own channel code (kernel.c: nx_post,
 * nx_reap_one, nx_finish, nx_park: the pieces nx_request, and so every SDK call, is made of), so a
 * bug there is a lock-step divergence. Once it has scribbled on its ring it is a hostile guest and
 * drives the ring with raw accesses from then on, keeping its own copies of the indices it owns.
 */
#include <nanvix.h>

#define INFO ((struct nx_info *)NX_GPA_INFO)
#define RING ((struct nx_ring_hdr *)NX_GPA_CHANNEL)
#define SQ ((struct nx_sqe *)(NX_GPA_CHANNEL + NX_SQ_OFF))
#define CQ ((struct nx_cqe *)(NX_GPA_CHANNEL + NX_CQ_OFF))
#define MASK (NX_RING_ENTRIES - 1)
#define fence() __atomic_thread_fence(__ATOMIC_SEQ_CST)

enum { CMD_SUBMIT = 1, CMD_DELIVER, CMD_SCRIBBLE, CMD_BLOCK, CMD_EXIT, CMD_CRASH, CMD_LOOP, CMD_GROW };

/* The request of each kind: 0 no-op, 1 kv_add "n" += 1, 2 append "x" to file "f", and two of the
 * Linux-ABI layer's: 3 stat "f", 4 list the tenant's top directory. */
static long post(uint64_t kind)
{
    switch (kind) {
    case 1:
        return nx_post(NX_OP_KV_ADD, 0, "n", 1, 0, 0, 0, 1);
    case 2:
        return nx_post(NX_OP_FILE_WRITE, NX_WRITE_APPEND, "f", 1, "x", 1, 0, 0);
    case 3:
        return nx_post(NX_OP_FILE_STAT, 0, "f", 1, 0, 0, sizeof(struct nx_stat), 0);
    case 4:
        return nx_post(NX_OP_FILE_LIST, 0, ".", 1, 0, 0, 512, 0);
    default:
        return nx_post(NX_OP_NOP, 0, 0, 0, 0, 0, 0, 0);
    }
}

/* The hostile guest's submit: the same request written raw, with the harness's user_data. */
static int raw_submit(uint32_t *sq_tail, uint32_t cq_head, uint64_t user_data, uint64_t kind)
{
    if (*sq_tail - cq_head >= NX_RING_ENTRIES) /* as the microkernel: <= 64 outstanding */
        return 0;
    struct nx_sqe *e = &SQ[*sq_tail & MASK];
    memset(e, 0, sizeof *e);
    e->opcode = NX_OP_NOP;
    e->user_data = user_data;
    uint32_t off = (*sq_tail & MASK) * NX_DATA_SLOT;
    char *d = (char *)(NX_GPA_CHANNEL + NX_DATA_OFF + off);
    if (kind == 1 || kind == 2) {
        d[0] = kind == 1 ? 'n' : 'f';
        d[1] = 'x';
        e->opcode = kind == 1 ? NX_OP_KV_ADD : NX_OP_FILE_WRITE;
        e->flags = kind == 1 ? 0 : NX_WRITE_APPEND;
        e->in_off = off;
        e->in_len = kind == 1 ? 1 : 2;
        e->name_len = 1;
        e->arg = 1;
    } else if (kind == 3 || kind == 4) {
        d[0] = kind == 3 ? 'f' : '.';
        e->opcode = kind == 3 ? NX_OP_FILE_STAT : NX_OP_FILE_LIST;
        e->in_off = e->out_off = off;
        e->in_len = e->name_len = 1;
        e->out_cap = kind == 3 ? sizeof(struct nx_stat) : 512;
    }
    fence();
    RING->sq_tail = ++*sq_tail;
    fence();
    if (RING->sq_flags & NX_SQ_NEED_WAKEUP)
        __asm__ volatile("outb %%al, %0" ::"i"(NX_PORT_DOORBELL), "a"(0));
    return 1;
}

int nx_main(const char *input, size_t len)
{
    int hostile = 0;              /* it has scribbled on its ring: raw accesses from now on */
    uint32_t sq_tail = 0, cq_head = 0;   /* the hostile guest's own copies of its indices */
    for (;;) {
        uint32_t cmd = (uint32_t)nx_hypercall(NX_HC_COMMAND, 0, 0);
        volatile uint64_t *arg = INFO->command_arg;
        switch (cmd) {
        case CMD_SUBMIT: { /* arg0 = user_data (a hostile guest's; the microkernel picks its own),
                            * arg1 = kind (see post) -> arg0 = 1 posted (arg1 = its user_data),
                            * 0 full (every request slot in flight), 2 refused otherwise */
            if (hostile) {
                arg[0] = raw_submit(&sq_tail, cq_head, arg[0], arg[1]);
                arg[1] = arg[0] ? SQ[(sq_tail - 1) & MASK].user_data : 0;
                break;
            }
            long ud = post(arg[1]);
            arg[0] = ud >= 0 ? 1 : ud == -NX_ENOSPC ? 0 : 2;
            arg[1] = ud >= 0 ? (uint64_t)ud : 0;
            break;
        }
        case CMD_DELIVER: { /* -> arg0 = 1 and the completion taken (arg1 user_data, arg2 result),
                             * or arg0 = 0 when the CQ is empty */
            if (hostile) {
                uint32_t tail = RING->cq_tail;
                fence();
                if (tail == cq_head) {
                    arg[0] = 0;
                    break;
                }
                struct nx_cqe *c = &CQ[cq_head & MASK];
                arg[1] = c->user_data;
                arg[2] = (uint64_t)c->result;
                RING->cq_head = ++cq_head;
                arg[0] = 1;
                break;
            }
            struct nx_cqe seen;
            int slot = nx_reap_one(&seen);
            if (slot == -2) {
                arg[0] = 0;
                break;
            }
            /* the request's thread collects its result (what nx_request returns) and frees its
             * slot; a completion that answers none of ours is reported as it was read */
            arg[2] = (uint64_t)(slot >= 0 ? nx_finish(slot, 0, 0, 0) : seen.result);
            arg[1] = seen.user_data;
            arg[0] = 1;
            break;
        }
        case CMD_SCRIBBLE: { /* arg0 = offset in the channel page, arg1 = the value,
                              * arg2 = its width: 8 bytes, else 4 */
            uint64_t off = arg[0] & (arg[2] == 8 ? ~7ull : ~3ull);
            if (off < NX_CHANNEL_SIZE && arg[2] == 8)
                *(volatile uint64_t *)(NX_GPA_CHANNEL + off) = arg[1];
            else if (off < NX_CHANNEL_SIZE)
                *(volatile uint32_t *)(NX_GPA_CHANNEL + off) = (uint32_t)arg[1];
            /* a hostile guest rewrites its own copies too: it means what it wrote */
            hostile = 1;
            sq_tail = RING->sq_tail;
            cq_head = RING->cq_head;
            break;
        }
        case CMD_BLOCK: /* wait for a completion, as the microkernel does when nothing can run */
            if (!hostile) {
                nx_park();
                break;
            }
            RING->cq_flags = NX_CQ_NOTIFY_ME;
            fence();
            if (RING->cq_tail == cq_head)
                nx_hypercall(NX_HC_WAIT, 0, 0);
            RING->cq_flags = 0;
            break;
        case CMD_EXIT:
            nx_exit((int)arg[0]);
        case CMD_CRASH:
            return *(volatile int *)0;
        case CMD_LOOP:
            for (;;)
                __asm__ volatile("");
        case CMD_GROW: { /* arg0 = pages -> arg0 = gpa (0 refused); touches the new memory */
            uint64_t gpa = nx_hypercall(NX_HC_GROW, arg[0], 0);
            if (gpa)
                *(volatile uint64_t *)gpa = 0x6e616e766978ull;
            arg[0] = gpa;
            break;
        }
        default:
            break;
        }
    }
}
