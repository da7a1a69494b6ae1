/* The user VM's ABI: memory layout, ports, hypercalls and the channel layout.
 *
 * The single source of truth for both sides: the guest microkernel includes it as C, the host's
 * Cython modules include it through `cdef extern`, and Python reads the values from there.
 * Fixed-width fields only; every field the guest can write is validated by the host reader.
 */
#ifndef NANVIX_ABI_H
#define NANVIX_ABI_H

#include <stdint.h>

#define NX_ABI_VERSION 1u

/* ---- guest-physical layout (identity-mapped, host-laid page tables) ------------------------- */
#define NX_PAGE_4K 0x1000ull
#define NX_PAGE_2M 0x200000ull       /* a host page: the unit the page pool hands out */

#define NX_GPA_PML4 0x1000ull         /* page tables, GDT, TSS: supervisor-only (U=0), so no */
#define NX_GPA_PDPT 0x2000ull         /* code in the VM (all CPL3) can read or write them    */
#define NX_GPA_PD0 0x3000ull
#define NX_GPA_PD1 0x4000ull
#define NX_GPA_PT0 0x5000ull
#define NX_GPA_GDT 0x6000ull
#define NX_GPA_TSS 0x7000ull
#define NX_GPA_INFO 0x10000ull        /* the info block: input, result, configuration (U, RW) */
#define NX_INFO_SIZE 0x10000ull
#define NX_LOW_SIZE 0x200000ull       /* [0, 2 MiB): the low slot, 4 KiB pages */
#define NX_GPA_CHANNEL 0x200000ull    /* [2, 4 MiB): the channel page, shared with the system VM */
#define NX_CHANNEL_SIZE NX_PAGE_2M
#define NX_GPA_RAM 0x400000ull        /* [4 MiB, 4 MiB + ram): image, heap, stacks (2 MiB pages) */
#define NX_RAM_MAX 0x3fc00000ull      /* RAM ends below 1 GiB */
#define NX_GPA_HOTADD 0x40000000ull   /* [1 GiB, ...): pages the host adds on NX_HC_GROW */
#define NX_HOTADD_MAX 64u             /* at most 64 added pages (128 MiB) per user VM */

/* Segment selectors of the host-laid GDT: 64-bit user code and data, RPL 3. */
#define NX_SEL_DATA 0x2b
#define NX_SEL_CODE 0x33
#define NX_SEL_TSS 0x40

/* ---- ports: the only two the TSS I/O bitmap lets the guest touch ---------------------------- */
#define NX_PORT_DOORBELL 0xd0         /* ioeventfd: wakes the system VM, no exit to user space */
#define NX_PORT_HYPERCALL 0xe0        /* `in`: exits to the host VMM, which answers in eax */

/* A hypercall is `in eax, NX_PORT_HYPERCALL` with the number in eax and arguments in rdi, rsi:
 * the host reads them from the synced registers and answers through the port's data. */
#define NX_HC_EXIT 1u                 /* rdi = exit status; result already in the info block */
#define NX_HC_WAIT 2u                 /* nothing to run until a completion: park this vCPU; rdi = at
                                       * most this many ns (a sleeping thread's deadline), 0: no limit */
#define NX_HC_GROW 3u                 /* rdi = pages wanted; rax = gpa of the first, 0 if refused */
#define NX_HC_READY 4u                /* init done: the host may snapshot here */
#define NX_HC_COMMAND 5u              /* test harness: rax = next command (see nx_step) */

/* Linux programs (static musl, patched) make a system call with `call *NX_GPA_SYSCALL_VEC`: an
 * indirect call through this fixed slot of the info block, which the microkernel fills at boot. */
#define NX_GPA_SYSCALL_VEC 0x11008ull

/* ---- the info block at NX_GPA_INFO ----------------------------------------------------------- */
#define NX_INFO_MAGIC 0x4f464e49584e414eull /* "NANXINFO" */
#define NX_INPUT_MAX 0x7000u
#define NX_RESULT_MAX 0x7000u

struct nx_info {
    uint64_t magic;
    uint32_t abi_version;
    uint32_t input_len;               /* host writes */
    uint64_t ram_base, ram_size;      /* host writes */
    uint64_t tsc_khz;                 /* host writes: for the guest clock */
    uint32_t result_len;              /* guest writes */
    int32_t exit_status;              /* guest writes (also passed in rdi) */
    uint64_t command_arg[4];          /* test harness: operands of NX_HC_COMMAND */
    uint8_t reserved[0x1000 - 88];
    uint64_t linux_syscalls;          /* guest: the Linux-ABI layer's system calls this invocation */
    uint64_t linux_syscalls_out;      /* guest: those of them that left the VM (a request, a hypercall) */
    uint64_t syscall_vec;             /* guest: the Linux-ABI layer's entry (see NX_GPA_SYSCALL_VEC) */
    uint8_t input[NX_INPUT_MAX];
    uint8_t result[NX_RESULT_MAX];
};

/* ---- the channel: SPSC rings + data area, one 2 MiB page ------------------------------------ */
#define NX_RING_MAGIC 0x474e4952u     /* "RING" */
#define NX_RING_ENTRIES 64u           /* power of two; indices are free-running u32 */
#define NX_SQ_OFF 0x1000u
#define NX_CQ_OFF 0x2000u
#define NX_DATA_OFF 0x4000u
#define NX_DATA_SIZE (NX_CHANNEL_SIZE - NX_DATA_OFF)
#define NX_DATA_SLOT 32512u           /* the guest's per-request buffer; host only checks bounds */

#define NX_SQ_NEED_WAKEUP 1u          /* sq_flags (system VM writes): ring the doorbell */
#define NX_CQ_NOTIFY_ME 1u            /* cq_flags (guest writes): signal the vCPU's eventfd */

/* One index per cache line; the comment names its single writer. The system VM never trusts the
 * shared copy of its own indices: it keeps private ones and only publishes them here. */
struct nx_ring_hdr {
    uint32_t magic, version, entries, data_off, data_size, slot_size;
    uint8_t _p0[40];
    volatile uint32_t sq_tail;  uint8_t _p1[60];  /* guest */
    volatile uint32_t sq_head;  uint8_t _p2[60];  /* system VM */
    volatile uint32_t cq_tail;  uint8_t _p3[60];  /* system VM */
    volatile uint32_t cq_head;  uint8_t _p4[60];  /* guest */
    volatile uint32_t sq_flags; uint8_t _p5[60];  /* system VM */
    volatile uint32_t cq_flags; uint8_t _p6[60];  /* guest */
};

/* A request. The name (path or key) is in_data[0:name_len], the value in_data[name_len:in_len]. */
struct nx_sqe {
    uint32_t opcode;
    uint32_t flags;
    uint64_t user_data;               /* opaque to the system VM, echoed in the completion */
    uint32_t in_off, in_len;          /* input, in the data area */
    uint32_t out_off, out_cap;        /* where the answer goes, in the data area */
    uint32_t name_len;
    uint32_t _rsvd;
    uint64_t arg;                     /* e.g. a file offset */
    uint8_t _pad[16];
};

struct nx_cqe {
    uint64_t user_data;
    int64_t result;                   /* >= 0 success (a count or value), < 0 an -NX_E* code */
    uint32_t out_len;                 /* bytes written at out_off */
    uint32_t flags;
    uint8_t _pad[40];
};

/* opcodes */
#define NX_OP_NOP 0u
#define NX_OP_LOG 1u                  /* value -> the tenant's log */
#define NX_OP_FILE_READ 2u            /* name = path, arg = offset -> bytes */
#define NX_OP_FILE_WRITE 3u           /* name = path, value = bytes, arg = offset, flags below */
#define NX_OP_FILE_SIZE 4u            /* name = path -> size */
#define NX_OP_FILE_DELETE 5u          /* name = path */
#define NX_OP_KV_GET 6u               /* name = key -> value */
#define NX_OP_KV_PUT 7u               /* name = key, value */
#define NX_OP_KV_DELETE 8u            /* name = key */
#define NX_OP_CLOCK 9u                /* -> wall-clock nanoseconds since the epoch */
#define NX_OP_KV_ADD 10u              /* name = key, arg = signed delta -> new value (atomic) */
#define NX_OP_FILE_STAT 11u           /* name = path -> struct nx_stat (the Linux-ABI layer's stat) */
#define NX_OP_FILE_LIST 12u           /* name = dir, arg = index of the first entry -> entries
                                       * packed as {u8 type, u8 len, name[len]}; result = count */
#define NX_OP_FILE_MKDIR 13u          /* name = path */
#define NX_OP_FILE_RENAME 14u         /* name = old path, value = new path */
#define NX_OP_COUNT 15u

#define NX_WRITE_TRUNC 1u             /* FILE_WRITE flags */
#define NX_WRITE_APPEND 2u            /* at the file's end; an answer room of 8 bytes gets the file's
                                       * size after it (u64): the writer's new offset */
#define NX_WRITE_EXCL 4u              /* create it; EEXIST if it exists (open's O_CREAT|O_EXCL) */
#define NX_WRITE_SETSIZE 8u           /* no data: the file's size becomes arg (ftruncate) */
#define NX_DELETE_DIR 1u              /* FILE_DELETE flags: remove an empty directory (rmdir) */

/* FILE_STAT's answer; FILE_LIST's entry types */
struct nx_stat {
    uint64_t size;
    int64_t mtime_ns;
    uint32_t type;                    /* NX_FT_* */
    uint32_t _rsvd;
};
#define NX_FT_FILE 1u
#define NX_FT_DIR 2u

#define NX_NAME_MAX 255u              /* path or key */

/* error codes, returned negated in nx_cqe.result */
#define NX_EINVAL 22                  /* a malformed request (bad index, length, offset, opcode) */
#define NX_ENOENT 2
#define NX_EACCES 13                  /* a path that would leave the tenant's tree */
#define NX_EIO 5                      /* the system VM failed, or restarted while serving */
#define NX_E2BIG 7
#define NX_ENOSPC 28
#define NX_ENOSYS 38
#define NX_EFBIG 27                   /* a file would exceed the tenant's largest file */
#define NX_EDQUOT 122                 /* the tenant is at one of its storage limits */
#define NX_EEXIST 17
#define NX_ENOTDIR 20
#define NX_EISDIR 21
#define NX_ENOTEMPTY 39

/* ---- host side only: a tenant's channel arena (never mapped into a guest) ---------------------
 *
 * One memfd per tenant holds a control region and every channel page of the tenant: the VMM maps
 * it once and hands each user VM a 2 MiB slice as its channel page; the tenant's system VM maps it
 * once too. So a channel costs no descriptor and no mapping of its own in either process, and
 * attaching a channel is a few stores here, not a message. The control region is written by both
 * sides and trusted by neither: every index read from it is checked.
 *
 *   [0, NX_CTL_SLOTS_OFF)            struct nx_ctl_hdr: per VMM shard, a change ring (VMM -> system
 *                                    VM: slots handed out or taken back) and a wake ring (system
 *                                    VM -> VMM: slots whose guest asked to be notified)
 *   [NX_CTL_SLOTS_OFF, chan_off)     struct nx_ctl_slot[nslots]
 *   [chan_off + i * 2 MiB, +2 MiB)   channel page of slot i
 */
#define NX_ARENA_MAGIC 0x414e4552u    /* "RENA" */
#define NX_SHARDS_MAX 32u             /* VMM shards one tenant's user VMs may be spread over */
#define NX_CTL_RING 1024u             /* entries of each change and wake ring (a power of two) */
#define NX_CTL_LOG 8000u              /* bytes of an invocation's log kept for its report */
#define NX_CTL_SLOTS_OFF 0x80000ull

struct nx_ctl_ring {                  /* single producer, single consumer, free-running u32 */
    volatile uint32_t head;  uint8_t _p0[60];   /* producer */
    volatile uint32_t tail;  uint8_t _p1[60];   /* consumer */
    volatile uint32_t overflow; uint8_t _p2[60]; /* producer sets it when full: rescan them all */
    uint32_t slot[NX_CTL_RING];
};

struct nx_ctl_hdr {
    uint32_t magic, version, nslots, slot_size;
    uint64_t chan_off;                /* offset of channel page 0 in the arena */
    uint8_t _p0[40];
    struct nx_ctl_ring change[NX_SHARDS_MAX];
    struct nx_ctl_ring wake[NX_SHARDS_MAX];
};

struct nx_ctl_slot {
    volatile uint32_t gen;            /* VMM: bumped each time the slot is handed to a new user VM */
    volatile uint32_t active;         /* VMM: 1 while its guest may submit */
    volatile uint32_t shard;          /* VMM: the shard whose wake ring answers for it */
    volatile uint32_t running;        /* VMM: 1 while its vCPU is on a core (only then can it submit) */
    uint64_t uvm;                     /* VMM: the user VM's id (for the system VM's log) */
    uint8_t _p0[40];
    volatile uint32_t seen_gen;       /* system VM: the generation its private state is for */
    volatile uint32_t idle;           /* system VM: 1 = it no longer touches this slot's page */
    volatile uint32_t served;         /* system VM: requests answered in this generation */
    volatile uint32_t broken;         /* system VM: nonzero once it found the guest's indices impossible */
    volatile uint32_t log_len;        /* system VM: bytes in log[] */
    volatile uint32_t log_dropped;    /* system VM: lines that did not fit */
    uint8_t _p1[40];
    uint8_t log[NX_CTL_LOG];          /* system VM: the invocation's log, escaped lines, '\n'-separated */
};

_Static_assert(sizeof(struct nx_ctl_hdr) <= NX_CTL_SLOTS_OFF, "control header fits");
_Static_assert(sizeof(struct nx_ctl_slot) <= 8192, "a slot record is at most 8 KiB");

_Static_assert(sizeof(struct nx_sqe) == 64, "sqe is 64 bytes");
_Static_assert(sizeof(struct nx_cqe) == 64, "cqe is 64 bytes");
_Static_assert(sizeof(struct nx_ring_hdr) <= NX_SQ_OFF, "ring header fits its page");
_Static_assert(NX_SQ_OFF + NX_RING_ENTRIES * 64 <= NX_CQ_OFF, "sq fits");
_Static_assert(NX_CQ_OFF + NX_RING_ENTRIES * 64 <= NX_DATA_OFF, "cq fits");
_Static_assert(NX_DATA_SLOT * NX_RING_ENTRIES <= NX_DATA_SIZE, "per-request slots fit");
_Static_assert(sizeof(struct nx_info) <= NX_INFO_SIZE, "info block fits");
_Static_assert(sizeof(struct nx_stat) == 24, "nx_stat is 24 bytes");
_Static_assert(NX_GPA_INFO + __builtin_offsetof(struct nx_info, syscall_vec) == NX_GPA_SYSCALL_VEC,
               "the syscall vector's fixed address");

#endif
