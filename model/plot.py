"""The density model's picture: what each design needs, minute by minute (a PNG): hosts, the
ratio to nanvix's, and the memory it holds (which a CPU-bound fleet hides)."""
import os

COLOURS = {"nanvix": "#d62728", "firecracker": "#1f77b4", "gvisor": "#2ca02c", "process": "#7f7f7f",
           "hyperlight": "#9467bd"}
STYLES = {"nanvix": "-", "firecracker": "--", "gvisor": "-.", "process": ":", "hyperlight": (0, (5, 1, 1, 1))}


def hosts_over_time(result, series, path):
    """series: {design: {"hosts": host-equivalents per minute, "gib": memory per minute}}. Writes
    the PNG; returns its absolute path."""
    import matplotlib
    matplotlib.use("Agg")   # files only: no display here
    import matplotlib.pyplot as plt

    fig, (top, mid, bottom) = plt.subplots(3, 1, figsize=(10, 10), sharex=True,
                                           gridspec_kw={"height_ratios": [3, 2, 2]})
    nx = series["nanvix"]["hosts"]
    for name, s in series.items():
        d = result["designs"][name]
        xs = [i / 60.0 for i in range(len(s["hosts"]))]
        label = "%s: %.2f host-eq. (%.1f whole hosts mean, %d peak), %s-bound; %.0f GiB mean" % (
            name, d["host_equivalents"], d["mean_hosts"], d["peak_hosts"], d["binding"], d["mean_gib"])
        kw = {"color": COLOURS.get(name), "linestyle": STYLES.get(name, "-"), "linewidth": 1.6}
        top.plot(xs, s["hosts"], label=label, **kw)
        mid.plot(xs, s["gib"], **kw)
        if name != "nanvix":
            bottom.plot(xs, [y / max(1e-9, v) for y, v in zip(s["hosts"], nx)], **kw)
    top.set_ylabel("hosts needed\n(host-equivalents)")
    top.set_ylim(bottom=0)
    top.grid(alpha=0.3)
    top.set_title("%s\n%d applications, %d tenants, %d invocations; hosts of %d GiB and %d cores"
                  % (result["workload"], result["apps"], result["tenants"], result["invocations"],
                     result["host_gib"], result["host_cores"]), fontsize=9)
    mid.set_ylabel("memory held (GiB)")
    mid.set_ylim(bottom=0)
    mid.grid(alpha=0.3)
    bottom.set_ylabel("hosts: each baseline\n/ nanvix")
    bottom.set_xlabel("hours (after a %.0f-minute warm-up)" % (result["warmup_s"] / 60.0))
    bottom.set_yscale("log")
    bottom.set_ylim(min(0.5, *result["hosts_saved_vs"].values()) / 1.5, 150)
    bottom.axhspan(20, 100, color="#ffbb78", alpha=0.4, label="the paper's claim: 20-100x")
    bottom.axhline(1, color="black", linewidth=0.8)
    bottom.grid(alpha=0.3, which="both")
    bottom.legend(fontsize=8, loc="upper right")
    fig.legend(*top.get_legend_handles_labels(), loc="lower center", ncol=1, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    path = os.path.abspath(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
