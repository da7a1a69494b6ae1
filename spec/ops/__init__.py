"""The operations of the state machine: one pure, total function each,
op(b, cfg, s, *args) -> (err, out, new_state), out = (a, b) ints; on error the state is unchanged.
`OPS` names them with their argument sorts and the tenant on whose behalf each runs."""
from nanvix.spec.ops.channels import (close_channel, complete, deliver, open_channel, scribble_cq_head,
                                      scribble_entry, scribble_pub, scribble_sq_tail, submit, take)
from nanvix.spec.ops.pages import map_page, unmap_page
from nanvix.spec.state import owes
from nanvix.spec.ops.sched import block, preempt, schedule, wake
from nanvix.spec.ops.tenants import create_tenant, crash_sysvm, restart_sysvm, start_sysvm
from nanvix.spec.ops.uvms import crash_uvm, create_uvm, destroy_uvm, exit_uvm, recycle_uvm, start_uvm


# The actor of an operation: actor(b, s, *args) -> the tenant on whose behalf it runs.
def by_tenant(b, s, t, *_):
    return t


def by_uvm(b, s, u, *_):
    return b.sel(s["u_tenant"], u)


def by_channel(b, s, c, *_):
    return b.sel(s["c_tenant"], c)


def by_core(b, s, k, *_):
    return b.ite(b.sel(s["k_busy"], k), b.sel(s["u_tenant"], b.sel(s["k_cur"], k)), b.nobody())


def by_second_uvm(b, s, x, u, *_):
    return b.sel(s["u_tenant"], u)


# name -> (function, argument sorts, actor). Argument sorts: "T","U","C","P","K" ids,
# "V" payload, "B" bool, "I" ring index (W bits), "S" ring slot, "2" which-of-two.
# actor(b, s, *args) -> the tenant on whose behalf the operation runs (for noninterference).
OPS = {
    "create_tenant": (create_tenant, ("T",), by_tenant),
    "start_sysvm": (start_sysvm, ("T",), by_tenant),
    "create_uvm": (create_uvm, ("U", "T"), by_uvm),
    "start_uvm": (start_uvm, ("U",), by_uvm),
    "open_channel": (open_channel, ("C", "U", "P"), by_channel),
    "submit": (submit, ("C", "V"), by_channel),
    "take": (take, ("C",), by_channel),
    "complete": (complete, ("C", "B"), by_channel),
    "deliver": (deliver, ("C",), by_channel),
    "exit_uvm": (exit_uvm, ("U",), by_uvm),
    "crash_uvm": (crash_uvm, ("U",), by_uvm),
    "close_channel": (close_channel, ("C",), by_channel),
    "destroy_uvm": (destroy_uvm, ("U",), by_uvm),
    "recycle_uvm": (recycle_uvm, ("U",), by_uvm),
    "crash_sysvm": (crash_sysvm, ("T",), by_tenant),
    "restart_sysvm": (restart_sysvm, ("T",), by_tenant),
    "map_page": (map_page, ("P", "U"), by_second_uvm),
    "unmap_page": (unmap_page, ("P", "U"), by_second_uvm),
    "schedule": (schedule, ("K", "U"), by_second_uvm),
    "preempt": (preempt, ("K",), by_core),
    "block": (block, ("K",), by_core),
    "wake": (wake, ("U",), by_uvm),
    "scribble_sq_tail": (scribble_sq_tail, ("C", "I"), by_channel),
    "scribble_cq_head": (scribble_cq_head, ("C", "I"), by_channel),
    "scribble_entry": (scribble_entry, ("C", "S", "V"), by_channel),
    "scribble_pub": (scribble_pub, ("C", "2", "I"), by_channel),
}



def core_available(b, cfg, s, k, u):
    """Whether core k is there for u's tenant now: idle, and not owed to a tenant that starves
    (fairness). The one thing about other tenants a schedule decision may reveal."""
    return b.and_(b.not_(b.sel(s["k_busy"], k)), b.not_(owes(b, s, b.sel(s["u_tenant"], u))))


# Operations whose outcome may depend on state no tenant observes: the scheduler is a declared
# timing channel, and this is all of it. name -> what may differ, availability(b, cfg, s, *args):
# noninterference (output and step consistency) is proved for them too, between states that
# also agree on it; so schedule's error codes, and everything else, reveal nothing more.
TIMING_OPS = {"schedule": core_available}


def apply(b, cfg, s, name, *args):
    fn = OPS[name][0]
    return fn(b, cfg, s, *args)
