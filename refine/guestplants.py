"""Deliberate bugs in the microkernel's own channel code (impl/guest/kernel.c), for the harness.

Each plant is a one-place edit of kernel.c's source: the harness copies the runtime's sources to a
folder of the build cache, applies the edit there and links the stepper guest (refine/stepper.c)
against that copy. The honest stepper drives kernel.c's request path (nx_post, nx_reap_one,
nx_finish, nx_park), so a bug planted there is met by a lock-step divergence. Nothing here is
read by production code: the real kernel.c is never touched.
"""
import hashlib
import os
import shutil
import tempfile

from nanvix.impl.guest import build as B

# name -> (the operation it breaks, what it is, file, text, the text that replaces it (once))
GUEST_BUGS = {
    "kernel_cq_head_unpublished": (
        "deliver (kernel.c)", "take_completion() consumes a completion but never hands cq_head back "
        "to the host: the system VM sees its CQ fill with answers already read",
        "kernel.c", "    barrier();\n    RING->cq_head = cq_head;\n    return took;",
        "    barrier();\n    return took;"),
    "kernel_submit_wrong_slot": (
        "submit (kernel.c)", "post() writes the entry one SQ slot past sq_tail: the system VM takes "
        "whatever the slot at sq_tail held",
        "kernel.c", "    struct nx_sqe *e = &SQ[sq_tail & MASK];",
        "    struct nx_sqe *e = &SQ[(sq_tail + 1) & MASK];"),
    "kernel_failure_as_success": (
        "deliver (kernel.c)", "take_completion() records a failed request's result as 0: the "
        "function is told its request succeeded",
        "kernel.c", "        r->result = c->result;", "        r->result = c->result < 0 ? 0 : c->result;"),
    "kernel_park_unarmed": (
        "block (kernel.c)", "park() re-checks the CQ before arming NOTIFY_ME: a completion posted "
        "in between wakes nobody (the classic lost wake-up)",
        "kernel.c", "    RING->cq_flags = NX_CQ_NOTIFY_ME;\n    fence();\n    if (RING->cq_tail == cq_head)\n"
        "        nx_hypercall(NX_HC_WAIT, ns, 0);",
        "    if (RING->cq_tail == cq_head) {\n        nx_hypercall(NX_HC_WAIT, ns, 0);\n"
        "        RING->cq_flags = NX_CQ_NOTIFY_ME;\n    }"),
}


def planted_source(name):
    """The folder of the runtime's sources with plant `name` applied (made once, in the cache)."""
    _, _, fname, old, new = GUEST_BUGS[name]
    files = B.RUNTIME_SOURCES + ("nanvix.h", "link.ld")
    texts = {}
    for f in files:
        with open(os.path.join(B.HERE, f)) as fh:
            texts[f] = fh.read()
    if texts[fname].count(old) != 1:
        raise RuntimeError("guest plant %s: its text is not in %s exactly once (kernel.c changed?)"
                           % (name, fname))
    texts[fname] = texts[fname].replace(old, new)
    h = hashlib.sha256("\0".join(texts[f] for f in files).encode()).hexdigest()[:16]
    out = os.path.join(B.cache_dir(), "planted-%s-%s" % (name, h))
    if not os.path.isdir(out):
        tmp = tempfile.mkdtemp(dir=B.cache_dir(), prefix=".planted-")
        for f in files:
            with open(os.path.join(tmp, f), "w") as fh:
                fh.write(texts[f])
        try:
            os.rename(tmp, out)
        except OSError:  # another builder got there first
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def stepper_image(stepper, plant=None):
    """The stepper guest's image, linked with the real microkernel or with a planted one."""
    with open(stepper, "rb") as f:
        text = f.read()
    if plant is None:
        return B.build_source(text, os.path.basename(stepper))
    return B.build_source(text, os.path.basename(stepper), src=planted_source(plant))
