"""The observation function (noninterference): what one tenant can see of a state.
Scheduling/timing is NOT observed: which core runs whom, and whether a core is idle, are invisible
(except the core of the tenant's own RUNNING vCPUs). See proofs/LEAKS.md."""
from nanvix.spec.state import *  # noqa: F401,F403  (the vocabulary)


def observe(b, cfg, s, t):
    """What tenant t can observe: a tuple of values (concrete) / terms (symbolic), one table per
    observed component. Entities of other tenants contribute only their ownership flag (False)
    and masked (zero) fields."""
    def m(mine, v):
        if isinstance(v, tuple):
            return tuple(m(mine, x) for x in v)
        return b.mask(mine, v)
    g = lambda f, i: b.sel(s[f], i)
    obs = [g("t_live", t), g("t_qu", t), g("t_qp", t), g("s_state", t), g("s_epoch", t)]
    umine = lambda u: b.eq(g("u_tenant", u), t)
    obs.append(b.tab("U", umine))
    obs.append(b.tab("U", lambda u: m(umine(u), g("u_state", u))))
    obs.append(b.tab("U", lambda u: m(b.and_(umine(u), b.eq(g("u_state", u), U_RUNNING)), g("u_core", u))))
    # the order among its own vCPUs (who overtook whom: its own scheduling history, nobody else's)
    obs.append(b.tab("U", lambda u: m(umine(u), g("u_ovt", u))))
    cmine = lambda c: b.eq(g("c_tenant", c), t)
    obs.append(b.tab("C", cmine))
    for f in ("c_state", "c_uvm", "c_sysvm", "c_page", "c_sqt", "c_cqh", "c_sqh", "c_cqt", "c_psqh",
              "c_pcqt", "c_sq", "c_svc", "c_cqv", "c_cqr", "c_hist", "c_honest"):
        obs.append(b.tab("C", lambda c, f=f: m(cmine(c), g(f, c))))
    pmine = lambda p: own_page(b, s, p, t)
    obs.append(b.tab("P", pmine))
    for f in ("p_kind", "p_owner", "p_scrub"):
        obs.append(b.tab("P", lambda p, f=f: m(pmine(p), g(f, p))))
    # and, for every page, which of t's user VMs map it and whether t's system VM does
    obs.append(b.tab("P", lambda p: b.tab("U", lambda u: b.and_(umine(u), b.sel(g("p_mu", p), u)))))
    obs.append(b.tab("P", lambda p: b.sel(g("p_ms", p), t)))
    return tuple(obs)
