# cython: language_level=3
"""The user VM's ABI as Python values: every constant, field offset and opcode of nanvix_abi.h,
read from the header by the C compiler (never written down twice)."""
from nanvix.impl.abi.abi cimport *

# Field offsets, taken from the C structs (never written down twice).
cdef nx_info _info
cdef nx_ring_hdr _hdr
cdef size_t _io(void *field):
    return <char *>field - <char *>&_info
cdef size_t _ho(void *field):
    return <char *>field - <char *>&_hdr

ABI = {name: value for name, value in dict(
    ABI_VERSION=NX_ABI_VERSION, RING_MAGIC=NX_RING_MAGIC, RING_ENTRIES=NX_RING_ENTRIES,
    SQ_OFF=NX_SQ_OFF, CQ_OFF=NX_CQ_OFF, DATA_OFF=NX_DATA_OFF, DATA_SIZE=NX_DATA_SIZE,
    DATA_SLOT=NX_DATA_SLOT, CHANNEL_SIZE=NX_CHANNEL_SIZE, NAME_MAX=NX_NAME_MAX, OP_COUNT=NX_OP_COUNT,
    PAGE_4K=NX_PAGE_4K, PAGE_2M=NX_PAGE_2M, GPA_PML4=NX_GPA_PML4, GPA_PDPT=NX_GPA_PDPT,
    GPA_PD0=NX_GPA_PD0, GPA_PD1=NX_GPA_PD1, GPA_PT0=NX_GPA_PT0, GPA_GDT=NX_GPA_GDT,
    GPA_TSS=NX_GPA_TSS, GPA_INFO=NX_GPA_INFO, INFO_SIZE=NX_INFO_SIZE, LOW_SIZE=NX_LOW_SIZE,
    GPA_CHANNEL=NX_GPA_CHANNEL, GPA_RAM=NX_GPA_RAM, RAM_MAX=NX_RAM_MAX, GPA_HOTADD=NX_GPA_HOTADD,
    HOTADD_MAX=NX_HOTADD_MAX, SEL_DATA=NX_SEL_DATA, SEL_CODE=NX_SEL_CODE, SEL_TSS=NX_SEL_TSS,
    PORT_DOORBELL=NX_PORT_DOORBELL, PORT_HYPERCALL=NX_PORT_HYPERCALL, HC_EXIT=NX_HC_EXIT,
    HC_WAIT=NX_HC_WAIT, HC_GROW=NX_HC_GROW, HC_READY=NX_HC_READY, HC_COMMAND=NX_HC_COMMAND,
    INFO_MAGIC=NX_INFO_MAGIC, GPA_SYSCALL_VEC=NX_GPA_SYSCALL_VEC, INPUT_MAX=NX_INPUT_MAX, RESULT_MAX=NX_RESULT_MAX,
    INFO_INPUT_LEN=_io(&_info.input_len), INFO_RAM_BASE=_io(&_info.ram_base),
    INFO_RAM_SIZE=_io(&_info.ram_size), INFO_TSC_KHZ=_io(&_info.tsc_khz),
    INFO_RESULT_LEN=_io(&_info.result_len), INFO_EXIT_STATUS=_io(&_info.exit_status),
    INFO_COMMAND_ARG=_io(&_info.command_arg), INFO_INPUT=_io(&_info.input),
    INFO_RESULT=_io(&_info.result), INFO_ABI_VERSION=_io(&_info.abi_version),
    INFO_LINUX_SYSCALLS=_io(&_info.linux_syscalls), INFO_LINUX_SYSCALLS_OUT=_io(&_info.linux_syscalls_out),
    SQ_NEED_WAKEUP=NX_SQ_NEED_WAKEUP, CQ_NOTIFY_ME=NX_CQ_NOTIFY_ME,
    HDR_SQ_TAIL=_ho(&_hdr.sq_tail), HDR_SQ_HEAD=_ho(&_hdr.sq_head),
    HDR_CQ_TAIL=_ho(&_hdr.cq_tail), HDR_CQ_HEAD=_ho(&_hdr.cq_head),
    HDR_SQ_FLAGS=_ho(&_hdr.sq_flags), HDR_CQ_FLAGS=_ho(&_hdr.cq_flags),
).items()}

OPS = {NX_OP_NOP: "nop", NX_OP_LOG: "log", NX_OP_FILE_READ: "file_read",
       NX_OP_FILE_WRITE: "file_write", NX_OP_FILE_SIZE: "file_size",
       NX_OP_FILE_DELETE: "file_delete", NX_OP_KV_GET: "kv_get", NX_OP_KV_PUT: "kv_put",
       NX_OP_KV_DELETE: "kv_delete", NX_OP_CLOCK: "clock", NX_OP_KV_ADD: "kv_add",
       NX_OP_FILE_STAT: "file_stat", NX_OP_FILE_LIST: "file_list", NX_OP_FILE_MKDIR: "file_mkdir",
       NX_OP_FILE_RENAME: "file_rename"}
OP_CODES = {v: k for k, v in OPS.items()}
WRITE_TRUNC = NX_WRITE_TRUNC
WRITE_APPEND = NX_WRITE_APPEND
WRITE_EXCL, WRITE_SETSIZE, DELETE_DIR = NX_WRITE_EXCL, NX_WRITE_SETSIZE, NX_DELETE_DIR
FT_FILE, FT_DIR = NX_FT_FILE, NX_FT_DIR
EEXIST, ENOTDIR, EISDIR, ENOTEMPTY = NX_EEXIST, NX_ENOTDIR, NX_EISDIR, NX_ENOTEMPTY
EINVAL, ENOENT, EACCES, EIO, E2BIG, ENOSPC, ENOSYS, EFBIG, EDQUOT = (
    NX_EINVAL, NX_ENOENT, NX_EACCES, NX_EIO, NX_E2BIG, NX_ENOSPC, NX_ENOSYS, NX_EFBIG, NX_EDQUOT)
ENTRIES = NX_RING_ENTRIES
