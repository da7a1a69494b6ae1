# The one layout header (nanvix_abi.h), as Cython sees it: cimported by the channel and the
# scheduler, so the host compiles the same structs and constants the guest does.
from libc.stdint cimport uint8_t, uint32_t, uint64_t, int64_t

cdef extern from "nanvix_abi.h":
    struct nx_ring_hdr:
        uint32_t magic, version, entries, data_off, data_size, slot_size
        uint32_t sq_tail, sq_head, cq_tail, cq_head, sq_flags, cq_flags

    struct nx_sqe:
        uint32_t opcode, flags
        uint64_t user_data
        uint32_t in_off, in_len, out_off, out_cap, name_len
        uint64_t arg

    struct nx_cqe:
        uint64_t user_data
        int64_t result
        uint32_t out_len, flags

    enum:
        NX_ABI_VERSION, NX_RING_MAGIC, NX_RING_ENTRIES, NX_SQ_OFF, NX_CQ_OFF, NX_DATA_OFF
        NX_DATA_SLOT, NX_SQ_NEED_WAKEUP, NX_CQ_NOTIFY_ME
        NX_OP_COUNT, NX_NAME_MAX
        NX_EINVAL, NX_ENOENT, NX_EACCES, NX_EIO, NX_E2BIG, NX_ENOSPC, NX_ENOSYS, NX_EFBIG, NX_EDQUOT
        NX_EEXIST, NX_ENOTDIR, NX_EISDIR, NX_ENOTEMPTY

    # everything else Python needs from the ABI (re-exported below, not duplicated);
    # the 64-bit constants are declared as such so nothing truncates them
    const unsigned long long NX_PAGE_4K, NX_PAGE_2M, NX_GPA_PML4, NX_GPA_PDPT, NX_GPA_PD0
    const unsigned long long NX_GPA_PD1, NX_GPA_PT0, NX_GPA_GDT, NX_GPA_TSS, NX_GPA_INFO
    const unsigned long long NX_INFO_SIZE, NX_LOW_SIZE, NX_GPA_CHANNEL, NX_GPA_RAM, NX_RAM_MAX
    const unsigned long long NX_GPA_HOTADD, NX_INFO_MAGIC, NX_CHANNEL_SIZE, NX_DATA_SIZE
    const unsigned long long NX_GPA_SYSCALL_VEC
    enum:
        NX_HOTADD_MAX, NX_SEL_DATA, NX_SEL_CODE, NX_SEL_TSS
        NX_PORT_DOORBELL, NX_PORT_HYPERCALL
        NX_HC_EXIT, NX_HC_WAIT, NX_HC_GROW, NX_HC_READY, NX_HC_COMMAND
        NX_INPUT_MAX, NX_RESULT_MAX
        NX_OP_NOP, NX_OP_LOG, NX_OP_FILE_READ, NX_OP_FILE_WRITE, NX_OP_FILE_SIZE
        NX_OP_FILE_DELETE, NX_OP_KV_GET, NX_OP_KV_PUT, NX_OP_KV_DELETE, NX_OP_CLOCK, NX_OP_KV_ADD
        NX_OP_FILE_STAT, NX_OP_FILE_LIST, NX_OP_FILE_MKDIR, NX_OP_FILE_RENAME
        NX_WRITE_TRUNC, NX_WRITE_APPEND, NX_WRITE_EXCL, NX_WRITE_SETSIZE, NX_DELETE_DIR, NX_FT_FILE, NX_FT_DIR

    struct nx_info:
        uint64_t magic
        uint32_t abi_version, input_len
        uint64_t ram_base, ram_size, tsc_khz
        uint32_t result_len
        int exit_status
        uint64_t command_arg[4]
        uint64_t linux_syscalls, linux_syscalls_out
        uint8_t input[1]
        uint8_t result[1]

    enum:
        NX_ARENA_MAGIC, NX_SHARDS_MAX, NX_CTL_RING, NX_CTL_LOG
    const unsigned long long NX_CTL_SLOTS_OFF

    struct nx_ctl_ring:
        uint32_t head, tail, overflow
        uint32_t slot[1]

    struct nx_ctl_hdr:
        uint32_t magic, version, nslots, slot_size
        uint64_t chan_off
        nx_ctl_ring change[1]
        nx_ctl_ring wake[1]

    struct nx_ctl_slot:
        uint32_t gen, active, shard, running
        uint64_t uvm
        uint32_t seen_gen, idle, served, broken, log_len, log_dropped
        uint8_t log[1]
