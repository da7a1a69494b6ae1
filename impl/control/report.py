"""The control plane's state report: everything a host holds, in the spec's vocabulary (tenants,
system VMs, user VMs, channels, pages, cores), as plain data. It reads what is really there: ring
indices and entries from the shared channel pages, as the guest and the system VM see them; each
live system VM's own account of its channels; which pages a user VM maps from KVM's memory slots;
whether a page is scrubbed from the page itself. The refinement harness maps it onto a spec state.
"""
from nanvix.impl.channel import ring_slots, ring_state
from nanvix.impl.errors import NanvixError


def state_report(rt):
    with rt.lock:
        tenants, uvms, channels = dict(rt.tenants), dict(rt.uvms), dict(rt.channels)
    out = {"tenants": {}, "system_vms": {}, "user_vms": {}, "channels": {}}
    cid_of = {(c.sysvm, c.slot): c.id for c in channels.values() if c.state == "open"}
    for name, t in tenants.items():
        out["tenants"][name] = {"id": t.id, "quota_uvms": t.quota_uvms, "quota_pages": t.quota_pages,
                                "user_vms": sorted(t.uvms)}
        served = None  # the system VM's own account of its channels (private indices)
        if t.sysvm.alive:
            try:
                served = {}
                for slot, v in t.sysvm.call("state")["channels"].items():
                    cid = cid_of.get((name, int(slot)))
                    served[cid if cid is not None else -1 - int(slot)] = v  # (a slot no channel has)
            except NanvixError:
                served = None
        out["system_vms"][name] = {"tenant": name, "alive": t.sysvm.alive, "epoch": t.sysvm.epoch,
                                   "pid": t.sysvm.pid, "served": served,
                                   "channels": sorted(c.id for c in channels.values() if c.sysvm == name)}
    # a page is the range of a file it views: found in a slot's memory, or in a part placed in it
    page_of = {(p.mem.fd, p.mem.file_offset): p.index for p in rt.pages.pages}
    for u in uvms.values():
        # pool pages as KVM has them: in the VM's memory slots (not our bookkeeping)
        slots = u.vm.slots.values() if u.vm is not None and not u.vm.closed else ()
        mapped = [x for _, _, m in slots for x in [m] + list(m.parts or ())]
        in_slots = sorted(page_of[(m.fd, m.file_offset)] for m in mapped if (m.fd, m.file_offset) in page_of)
        out["user_vms"][u.id] = {"tenant": u.tenant, "state": u.state, "core": u.core,
                                 "status": u.status, "system_vm": u.tenant,
                                 "channel": u.channel.id if u.channel else None,
                                 "pages": [p.index for p in u.pages], "pages_in_slots": in_slots}
    for c in channels.values():
        out["channels"][c.id] = {
            "user_vm": c.uvm.id, "system_vm": c.sysvm, "page": c.page.index, "state": c.state,
            "broken": rt.channel_broken(c), "ring": ring_state(c.page.mem),
            "slots": ring_slots(c.page.mem),
        }
    out["pages"] = rt.pages.state()
    out["scheduler"] = rt.sched.queue_state()
    out["scheduler"]["ncores"] = rt.sched.ncores
    return out
