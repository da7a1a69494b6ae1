/* The stepper: a guest that does one action per command, for the refinement harness.
 *
 * It asks the host for its next command (NX_HC_COMMAND; operands in the info block) and performs
 * exactly that action on its channel with raw ring accesses, then asks again. So a harness can
 * drive a real user VM one spec operation at a time: submit, deliver, scribble over its own ring
 * like a hostile guest, block, exit, crash, loop, grow. Results go back in command_arg[]. It
 * keeps its own copies of the indices it owns, as the microkernel does.
 */
#include <nanvix.h>

#define INFO ((struct nx_info *)NX_GPA_INFO)
#define RING ((struct nx_ring_hdr *)NX_GPA_CHANNEL)
#define SQ ((struct nx_sqe *)(NX_GPA_CHANNEL + NX_SQ_OFF))
#define CQ ((struct nx_cqe *)(NX_GPA_CHANNEL + NX_CQ_OFF))
#define MASK (NX_RING_ENTRIES - 1)
#define fence() __atomic_thread_fence(__ATOMIC_SEQ_CST)

enum { CMD_SUBMIT = 1, CMD_DELIVER, CMD_SCRIBBLE, CMD_BLOCK, CMD_EXIT, CMD_CRASH, CMD_LOOP, CMD_GROW };

int nx_main(const char *input, size_t len)
{
    uint32_t sq_tail = RING->sq_tail, cq_head = RING->cq_head;
    for (;;) {
        uint32_t cmd = (uint32_t)nx_hypercall(NX_HC_COMMAND, 0, 0);
        volatile uint64_t *arg = INFO->command_arg;
        switch (cmd) {
        case CMD_SUBMIT: { /* arg0 = user_data, arg1 = kind (0 no-op, 1 kv_add "n" += 1,
                            * 2 append "x" to file "f", and two of the Linux-ABI layer's:
                            * 3 stat "f", 4 list the tenant's top directory)
                            * -> arg0 = 1 (posted) or 0 (full) */
            if (sq_tail - cq_head >= NX_RING_ENTRIES) { /* as the microkernel: <= 64 outstanding */
                arg[0] = 0;
                break;
            }
            struct nx_sqe *e = &SQ[sq_tail & MASK];
            memset(e, 0, sizeof *e);
            e->opcode = NX_OP_NOP;
            e->user_data = arg[0];
            if (arg[1] == 1 || arg[1] == 2) {
                uint32_t off = (sq_tail & MASK) * NX_DATA_SLOT;
                char *d = (char *)(NX_GPA_CHANNEL + NX_DATA_OFF + off);
                d[0] = arg[1] == 1 ? 'n' : 'f';
                d[1] = 'x';
                e->opcode = arg[1] == 1 ? NX_OP_KV_ADD : NX_OP_FILE_WRITE;
                e->flags = arg[1] == 1 ? 0 : NX_WRITE_APPEND;
                e->in_off = off;
                e->in_len = arg[1] == 1 ? 1 : 2;
                e->name_len = 1;
                e->arg = 1;
            } else if (arg[1] == 3 || arg[1] == 4) {
                uint32_t off = (sq_tail & MASK) * NX_DATA_SLOT;
                char *d = (char *)(NX_GPA_CHANNEL + NX_DATA_OFF + off);
                d[0] = arg[1] == 3 ? 'f' : '.';
                e->opcode = arg[1] == 3 ? NX_OP_FILE_STAT : NX_OP_FILE_LIST;
                e->in_off = e->out_off = off;
                e->in_len = e->name_len = 1;
                e->out_cap = arg[1] == 3 ? sizeof(struct nx_stat) : 512;
            }
            fence();
            RING->sq_tail = ++sq_tail;
            fence();
            if (RING->sq_flags & NX_SQ_NEED_WAKEUP)
                __asm__ volatile("outb %%al, %0" ::"i"(NX_PORT_DOORBELL), "a"(0));
            arg[0] = 1;
            arg[1] = sq_tail;
            break;
        }
        case CMD_DELIVER: { /* -> arg0 = 1 and the entry, or arg0 = 0 when the CQ is empty */
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
        case CMD_SCRIBBLE: { /* arg0 = offset in the channel page, arg1 = the value,
                              * arg2 = its width: 8 bytes, else 4 */
            uint64_t off = arg[0] & (arg[2] == 8 ? ~7ull : ~3ull);
            if (off < NX_CHANNEL_SIZE && arg[2] == 8)
                *(volatile uint64_t *)(NX_GPA_CHANNEL + off) = arg[1];
            else if (off < NX_CHANNEL_SIZE)
                *(volatile uint32_t *)(NX_GPA_CHANNEL + off) = (uint32_t)arg[1];
            /* a hostile guest rewrites its own copies too: it means what it wrote */
            sq_tail = RING->sq_tail;
            cq_head = RING->cq_head;
            break;
        }
        case CMD_BLOCK: /* wait for a completion, exactly as the microkernel does */
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
