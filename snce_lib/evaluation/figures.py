"""The methods comparison as a figure."""

from __future__ import annotations

from collections.abc import Sequence


def plot_comparison(rows: Sequence[dict], title: str = "Erasure methods in the toy worlds"):
    """One panel per world: target rate (share of target prompts whose image shows the target)
    against non-target accuracy (mean of colour and shape accuracy on prompts without it), a point
    per method and lambda; colour = method, marker = target. The ideal corner is bottom right."""
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r.get("target_rate") is not None]  # rows that say why nothing ran
    worlds = list(dict.fromkeys(r["world"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    targets = list(dict.fromkeys(r["target"] for r in rows))
    cmap = plt.get_cmap("tab20")
    markers = dict(zip(targets, "o^sDv"))
    lo = min(0.5, min((r["other_colour_acc"] + r["other_shape_acc"]) / 2 for r in rows) - 0.05)
    fig, axes = plt.subplots(1, len(worlds), figsize=(6 * len(worlds), 5), sharey=True, squeeze=False)
    for ax, world in zip(axes[0], worlds):
        for r in (r for r in rows if r["world"] == world):
            x = (r["other_colour_acc"] + r["other_shape_acc"]) / 2
            ax.scatter(x, r["target_rate"], color=cmap(methods.index(r["method"]) % 20), marker=markers[r["target"]],
                       s=30 + 12 * (r.get("lam") or 1), alpha=0.8, edgecolors="k", linewidths=0.4)  # fmt: skip
        n = next(r["n_prompts"] for r in rows if r["world"] == world)
        ax.set(title=f"{world} world ({n} prompts a set)", xlabel="non-target accuracy (colour and shape, share)",
               xlim=(lo, 1.02), ylim=(-0.02, 1.02))  # fmt: skip
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("target rate (share of target prompts drawn with the target)")
    handles = [plt.Line2D([], [], ls="", marker="o", color=cmap(i % 20), label=m) for i, m in enumerate(methods)]
    handles += [plt.Line2D([], [], ls="", marker=markers[t], color="gray", label=f"target: {t}") for t in targets]
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, title="marker size: λ")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
