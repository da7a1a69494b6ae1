"""`nanvix check --mutants`: every implementation mutant (nanvix.refine.plants) against the checks.

Each mutant first meets a short lock-step campaign (the one `nanvix check` runs, stopped at its
first divergence; the honest implementation runs the same campaign first, clean). One the campaign does not catch meets its directed scenario
(nanvix.refine.scenarios), if it has one: a short program that runs clean on the honest
implementation (checked here too) and reaches the code the mutant sits in. A mutant neither
catches is a survivor: the checks miss that bug.
"""
import time

from nanvix.refine.campaign import Campaign
from nanvix.refine.lockstep import Divergence, Lockstep
from nanvix.refine.plants import MUTANTS, NAMES
from nanvix.refine.scenarios import SCENARIOS


def play(scenario, plant=None):
    """Run a scenario in strict lock-step (with the system VMs serving by their loop if the
    scenario says so): the Divergence it raises, or None. (Any other error is raised: it proves
    nothing about the mutant, the machine may be at fault.)"""
    try:
        with Lockstep(strict=True, plant=plant, loop=getattr(scenario, "loop", False), quiet_s=3) as h:
            scenario(h)
    except Divergence as e:
        return e
    return None


def campaign(name, steps, seed, episode, errors=None, loop=False):
    """(caught by, what) or None. A run that fails with an error other than a divergence counts
    for nothing (appended to errors)."""
    c = Campaign(seed=seed, episode=episode, plant=name, loop=loop)
    try:
        c.run(steps, stop_first=True)
    except Exception as e:
        if errors is not None:
            errors.append("campaign: %s: %s" % (type(e).__name__, str(e)[:200]))
    finally:
        try:
            c.close()
        except Exception:
            pass
    if c.divergences:
        return "%scampaign (%d steps, seed %d)" % ("loop " * loop, c.steps, seed), c.divergences[0]["what"]
    return None


def run(names=None, steps=1000, seed=0, episode=250, progress=None):
    rows = []
    honest = {}   # scenario -> its run on the honest implementation diverged (it is then no proof)
    # The same campaign on the honest implementation first: a divergence there would make every
    # mutant look caught, so then no campaign counts.
    t0 = time.perf_counter()
    baseline = campaign(None, steps, seed, episode)
    loop_baseline = None   # (the same for a campaign served by the loop, run when a mutant needs it)
    baseline_seconds = round(time.perf_counter() - t0, 1)
    for name in names or NAMES:
        m = MUTANTS[name]
        t0 = time.perf_counter()
        errors = []
        if m.loop and loop_baseline is None:
            loop_baseline = [campaign(None, steps, seed, episode, loop=True)]
        clean = not (loop_baseline[0] if m.loop else baseline)
        got = campaign(name, steps, seed, episode, errors, m.loop) if clean else None
        sc = SCENARIOS.get(name)
        if got is None and sc is not None:
            try:
                if sc not in honest:
                    honest[sc] = play(sc)
                e = play(sc, name) if honest[sc] is None else None
                if e is not None:
                    got = "scenario %s" % sc.__name__, str(e).split("\nafter:", 1)[0]
            except Exception as e:
                errors.append("scenario: %s: %s" % (type(e).__name__, str(e)[:200]))
        row = {"mutant": name, "where": m.where, "caught": got is not None,
               "by": got[0] if got else ("campaign" + (", scenario %s" % sc.__name__ if sc else "")),
               "what": got[1][:200] if got else "", "doc": m.doc,
               "seconds": round(time.perf_counter() - t0, 1)}
        if errors:
            row["errors"] = errors
        if sc is not None and honest.get(sc) is not None:
            row["scenario_diverges_honestly"] = str(honest[sc])[:200]
        rows.append(row)
        if progress:
            progress(row)
    caught = sum(r["caught"] for r in rows)
    return {"mutants": rows, "caught": caught, "total": len(rows), "baseline_seconds": baseline_seconds,
            "baseline_divergence": baseline[1] if baseline else None,
            "loop_baseline_divergence": loop_baseline[0][1] if loop_baseline and loop_baseline[0] else None,
            "score": round(100.0 * caught / len(rows), 1) if rows else None,
            "steps": steps, "seed": seed, "survivors": [r["mutant"] for r in rows if not r["caught"]]}


def render(r):
    lines = ["%-26s %-9s %-28s %s" % ("mutant", "", "where", "by")]
    for row in r["mutants"]:
        lines.append("%-26s %-9s %-28s %s" % (row["mutant"], "CAUGHT" if row["caught"] else "SURVIVED",
                                             row["where"], row["by"]))
        for e in row.get("errors", ()):
            lines.append("    (a run failed, counted for nothing: %s)" % e)
    lines.append("")
    if r["baseline_divergence"]:
        lines.append("the honest implementation diverges in this campaign (no campaign counts): %s"
                     % r["baseline_divergence"])
    if r.get("loop_baseline_divergence"):
        lines.append("the honest implementation diverges in the campaign served by the loop (no loop campaign "
                     "counts): %s" % r["loop_baseline_divergence"])
    lines.append("mutation score: %d/%d (%.1f%%); campaigns of up to %d steps, seed %d"
                 % (r["caught"], r["total"], r["score"] or 0, r["steps"], r["seed"]))
    if r["survivors"]:
        lines.append("survivors: %s" % ", ".join(r["survivors"]))
    return "\n".join(lines)
