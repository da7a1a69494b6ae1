"""Branch coverage of a lock-step campaign: not only which operations succeeded, but which of their
branches ran. Each step is classified from the spec state before and after it and the
implementation's outcome (a label, e.g. "take.EFULL", "ring.cq.one_short", "restart.recovered"):

  errors       every error each operation can answer (the spec's error list, per operation)
  completions  every kind of answer a guest was delivered: success, and each error a system VM
               gives (EIO after a restart, EINVAL/ENOSYS/E2BIG for a malformed request, ENOENT
               from the store)
  ring         every boundary of the rings: SQ and CQ full, empty, one short of full; the wrap
               of every index (sq_tail, sq_head, cq_tail, cq_head) past the ring's last slot
  restart      a system VM crashing with nothing outstanding, with requests not yet taken, with
               requests taken and not answered; a restart that answers those with EIO, that
               finds a channel's published indices impossible, that keeps a broken channel broken
"""
from nanvix import spec as M
from nanvix.impl.abi import E2BIG, EINVAL, EIO, ENOENT, ENOSYS

from nanvix.refine.abstraction import CFG, MASK32

ERRORS = {
    "create_tenant": ("EINVAL",), "start_sysvm": ("EINVAL",), "crash_sysvm": ("EINVAL",),
    "restart_sysvm": ("EINVAL",), "create_uvm": ("EINVAL", "EBUSY", "EDOWN", "EQUOTA"),
    "destroy_uvm": ("EINVAL", "EBUSY"), "recycle_uvm": ("EINVAL", "EDOWN"), "submit": ("EINVAL", "EFULL"),
    "take": ("EINVAL", "EDOWN", "EEMPTY", "EFULL"), "complete": ("EINVAL", "EDOWN", "EEMPTY"),
    "deliver": ("EINVAL", "EEMPTY"), "exit_uvm": ("EINVAL",), "crash_uvm": ("EINVAL",),
    "map_page": ("EINVAL", "EQUOTA"), "schedule": ("EINVAL", "EBUSY"), "preempt": ("EINVAL",),
    "block": ("EINVAL", "EBUSY"), "wake": ("EEMPTY",),
}
COMPLETIONS = {0: "ok", EIO: "EIO", EINVAL: "EINVAL", ENOSYS: "ENOSYS", E2BIG: "E2BIG", ENOENT: "ENOENT"}
RING = ("sq.full", "sq.one_short", "sq.empty", "cq.full", "cq.one_short", "cq.empty",
        "wrap.sq_tail", "wrap.sq_head", "wrap.cq_tail", "wrap.cq_head")
RESTART = ("crash.idle", "crash.untaken", "crash.taken", "recovered", "broke", "kept_broken")
BRANCHES = tuple(["error.%s.%s" % (op, e) for op, errs in ERRORS.items() for e in errs] +
                 ["completion.%s" % k for k in COMPLETIONS.values()] +
                 ["ring.%s" % r for r in RING] + ["restart.%s" % r for r in RESTART])


def _d(a, b):
    return (a - b) & MASK32


def _last_slot(i):
    return i % CFG.R == CFG.R - 1


def branches(op, args, pre, post, out):
    """The labels of the branches one step took (op: the harness's operation; pre/post: the
    spec state around it; out: the implementation's Outcome)."""
    got = []
    err = out.err
    if op == "wake" and not out["us"]:
        err = "EEMPTY"   # (the harness's wake collects signals: none is the spec's EEMPTY)
    if err != "OK" and err in ERRORS.get(op, ()):
        got.append("error.%s.%s" % (op, err))
    c = args[0] if args and op in ("submit", "take", "complete", "deliver") else None
    if c is not None:
        sqt, cqh, sqh, cqt = (pre[f][c] for f in ("c_sqt", "c_cqh", "c_sqh", "c_cqt"))
        if op == "submit":
            if err == "EFULL":
                got.append("ring.sq.full")
            elif err == "OK":
                if _d(sqt, cqh) == CFG.R - 1:
                    got.append("ring.sq.one_short")
                if _last_slot(sqt):
                    got.append("ring.wrap.sq_tail")
        elif op == "take":
            if err == "EEMPTY":
                got.append("ring.sq.empty")
            elif err == "EFULL":
                got.append("ring.cq.full")
            elif err == "OK" and not out.get("broke"):
                if _d(cqt, cqh) + _d(sqh, cqt) == CFG.R - 1:
                    got.append("ring.cq.one_short")
                if _last_slot(sqh):
                    got.append("ring.wrap.sq_head")
        elif op == "complete" and err == "OK" and _last_slot(cqt):
            got.append("ring.wrap.cq_tail")
        elif op == "deliver":
            if err == "EEMPTY":
                got.append("ring.cq.empty")
            elif err == "OK":
                if _last_slot(cqh):
                    got.append("ring.wrap.cq_head")
                kind = COMPLETIONS.get(-out["result"] if out["result"] < 0 else 0)
                if kind:
                    got.append("completion.%s" % kind)
    if op in ("crash_sysvm", "restart_sysvm") and err == "OK":
        t = args[0]
        mine = [c for c in range(CFG.C) if pre["c_state"][c] != M.C_FREE and pre["c_sysvm"][c] == t]
        live = [c for c in mine if pre["c_state"][c] == M.C_OPEN]
        if op == "crash_sysvm":
            if any(pre["c_sqh"][c] != pre["c_cqt"][c] for c in live):
                got.append("restart.crash.taken")
            if any(pre["c_sqt"][c] != pre["c_sqh"][c] for c in live):
                got.append("restart.crash.untaken")
            if all(pre["c_sqt"][c] == pre["c_sqh"][c] == pre["c_cqt"][c] for c in live):
                got.append("restart.crash.idle")
        else:
            if any(post["c_state"][c] == M.C_OPEN and pre["c_psqh"][c] != pre["c_pcqt"][c] for c in live):
                got.append("restart.recovered")
            if any(post["c_state"][c] == M.C_BROKEN for c in live):
                got.append("restart.broke")
            if any(pre["c_state"][c] == M.C_BROKEN for c in mine):
                got.append("restart.kept_broken")
    return got
