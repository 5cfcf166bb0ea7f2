"""Figures of the simulation (matplotlib's object API with the Agg canvas; no pyplot state).

- ``error_curves.png``: E(t) on a log scale and mean IoU(t) per loss (Figs. 7a / 8a).
- ``iou_boxplots.png``: IoU distribution over iterations, one panel per loss (Figs. 7b / 8b),
  drawn from the stored quantiles: box 25-75 %, median line, whiskers 5 % and 95 %, min and max
  as points.
- ``trajectory.png``: one anchor regressed onto one target, one panel per loss (Fig. 1).
- ``focal_l1.png``: FocalL1 loss and gradient for several beta (Figs. 4 and 5).
"""

import math
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

ERROR_CURVES = "error_curves.png"
IOU_BOXPLOTS = "iou_boxplots.png"
TRAJECTORY = "trajectory.png"
FOCAL_L1 = "focal_l1.png"
SHOWN_ITERATIONS = (0, 10, 20, 40, 80, 160, 200)  # boxes drawn in trajectory.png


def plot_error_curves(results: dict, path: Path) -> Path:
    """Draw E(t) (log scale) and mean IoU(t) for every loss of a results dict."""
    fig = Figure(figsize=(12, 4.5), layout="constrained")
    error_ax, iou_ax = fig.subplots(1, 2)
    for name, result in results["losses"].items():
        steps = np.arange(len(result["error"]))
        error_ax.plot(steps, result["error"], label=name)
        iou_ax.plot(steps, result["mean_iou"], label=name)
    error_ax.set(xlabel="iteration t", ylabel="E(t) = sum |B - B_gt|", yscale="log")
    iou_ax.set(xlabel="iteration t", ylabel="mean IoU")
    error_ax.set_title(f"{_title(results)}: regression error sum")
    iou_ax.set_title("mean IoU")
    for ax in (error_ax, iou_ax):
        ax.grid(True, alpha=0.3)
    iou_ax.legend(fontsize=8)
    return _save(fig, path)


def plot_iou_boxplots(results: dict, path: Path, max_boxes: int = 11) -> Path:
    """Draw box plots of the IoU over iterations, one panel per loss, from stored quantiles."""
    names = list(results["losses"])
    cols = min(4, len(names))
    rows = math.ceil(len(names) / cols)
    fig = Figure(figsize=(4 * cols, 3.2 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, sharey=True)).ravel()
    levels = results["quantile_levels"]
    for ax, name in zip(axes, names, strict=False):
        result = results["losses"][name]
        chosen = _evenly(list(range(len(result["quantile_iterations"]))), max_boxes)
        stats = [
            _box_stats(
                result["iou_quantiles"][i],
                levels,
                str(result["quantile_iterations"][i]),
            )
            for i in chosen
        ]
        ax.bxp(stats, showfliers=True, flierprops={"markersize": 2})
        ax.set_title(name)
        ax.set_xlabel("iteration t")
        ax.tick_params(axis="x", labelsize=7, labelrotation=90)
        ax.grid(True, axis="y", alpha=0.3)
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    axes[0].set_ylabel("IoU")
    fig.suptitle(f"{_title(results)}: IoU over iterations (box 25-75 %, whiskers 5-95 %)")
    return _save(fig, path)


def plot_trajectories(
    trajectories: dict, path: Path, shown: Sequence[int] = SHOWN_ITERATIONS
) -> Path:
    """Draw the target and the regressed box at chosen iterations, one panel per loss."""
    names = list(trajectories["losses"])
    shown = [t for t in shown if t <= trajectories["iterations"]]
    fig = Figure(figsize=(4.2 * len(names), 4.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(names), sharex=True, sharey=True))
    colours = _colours(len(shown))
    for ax, name in zip(axes, names, strict=True):
        run = trajectories["losses"][name]
        _draw_box(ax, trajectories["target"], "black", "target", width=2.5)
        for colour, t in zip(colours, shown, strict=True):
            _draw_box(ax, run["boxes"][t], colour, f"t={t}", style="--" if t == 0 else "-")
        ax.set_title(f"{name}: IoU {run['iou'][0]:.2f} -> {run['iou'][-1]:.3f}")
        ax.set_aspect("equal")
        ax.autoscale_view()
        ax.grid(True, alpha=0.3)
    axes[-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _save(fig, path)


def plot_focal_l1(curves: dict, path: Path) -> Path:
    """Draw FocalL1 loss (Eq. 9) and gradient (Eq. 8) against the error x for each beta."""
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    grad_ax, loss_ax = fig.subplots(1, 2)
    x = curves["x"]
    for curve in curves["curves"].values():
        label = f"beta={curve['beta']:.3f}"
        grad_ax.plot(x, curve["grad"], label=label)
        loss_ax.plot(x, curve["loss"], label=label)
    grad_ax.plot(x, [min(v, 1.0) for v in x], "k:", linewidth=1, label="L1 / smooth L1 (beta=1)")
    grad_ax.set(xlabel="x = |B - B_gt|", ylabel="dL_f/dx (autograd)", title="gradient (Eq. 8)")
    loss_ax.set(xlabel="x = |B - B_gt|", ylabel="L_f(x)", title="loss (Eq. 9)")
    for ax in (grad_ax, loss_ax):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, path)


def _box_stats(quantiles: Sequence[float], levels: Sequence[float], label: str) -> dict:
    q = dict(zip(levels, quantiles, strict=True))
    return {
        "label": label,
        "med": q[0.5],
        "q1": q[0.25],
        "q3": q[0.75],
        "whislo": q[0.05],
        "whishi": q[0.95],
        "fliers": [q[0.0], q[1.0]],
    }


def _draw_box(ax, box: Sequence[float], colour, label: str, style="-", width=1.2) -> None:
    x, y, w, h = box
    ax.add_patch(
        Rectangle(
            (x - w / 2, y - h / 2),
            w,
            h,
            fill=False,
            edgecolor=colour,
            linestyle=style,
            linewidth=width,
            label=label,
        )
    )


def _colours(count: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(i / max(count - 1, 1)) for i in range(count)]


def _evenly(items: list, count: int) -> list:
    if len(items) <= count:
        return items
    picks = np.linspace(0, len(items) - 1, count).round().astype(int)
    return [items[i] for i in sorted(set(picks))]


def _title(results: dict) -> str:
    config = results["config"]
    return (
        f"{config['setup']} ({config['reading']} reading: {config['points']}, {config['update']})"
    )


def _save(fig: Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
