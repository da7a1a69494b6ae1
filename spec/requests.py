"""Which requests are well-formed, and the exact error a malformed one is answered with.

A request is an SQ entry (nanvix_abi.h: opcode, the input [in_off, +in_len) and output
[out_off, +out_cap) of the channel's data area, name_len, the first name_len input bytes being
the name). The system VM validates every field it reads before using any; a malformed request is
not executed and is answered with exactly the error below (the first rule that applies). The
transition system abstracts a request to its payload; the refinement harness holds the system VM
to this rule on every request it takes (nanvix.refine.lockstep), so a validation bug (a wrong
errno, a bad field accepted) is a divergence of `nanvix check`.
"""

ENOSYS, EINVAL, E2BIG = 38, 22, 7     # errnos, as nanvix_abi.h numbers them
DATA_SIZE = 2080768                   # bytes of the channel's data area
NAME_MAX = 255                        # longest name (path or key)
OP_COUNT = 15                         # opcodes are 0 .. OP_COUNT - 1
FIELDS = ("opcode", "in_off", "in_len", "out_off", "out_cap", "name_len")


def request_error(opcode, in_off, in_len, out_off, out_cap, name_len):
    """0 for a well-formed request, else the errno it is answered with. Fields are unsigned
    32-bit; sums are taken without wrap-around."""
    if opcode >= OP_COUNT:
        return ENOSYS
    if in_off + in_len > DATA_SIZE or out_off + out_cap > DATA_SIZE:
        return EINVAL
    if name_len > in_len:
        return EINVAL
    if name_len > NAME_MAX:
        return E2BIG
    return 0
