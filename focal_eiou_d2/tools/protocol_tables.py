"""The protocol's tables and plots from finished runs' result records: per row and grid value
the mean and sample standard deviation over seeds, and the difference to a baseline row paired by
seed with its 95 % confidence interval (``focal_eiou_d2.evaluation.statistics``).

:func:`summarize` turns result records into table entries, :func:`write_outputs` writes them as
``table.md``, ``table.json``, ``ap_vs_iou.png`` and, for a grid, ``sweep.png``.
"""

import json
import os

import numpy as np
from matplotlib.figure import Figure

from focal_eiou_d2.evaluation import IOU_THRESHOLDS
from focal_eiou_d2.evaluation.statistics import (
    CONFIDENCE,
    mean_half_width,
    mean_std,
    paired_difference,
)

# The columns of the tables: COCO AP and AP at four IoU thresholds.
METRICS = ("AP", "AP50", "AP75", "AP85", "AP95")


def summarize(runs, records, baseline):
    """Rows of the table: per (row, setting) the mean and std over seeds and the paired
    difference to ``baseline`` (same setting, same seeds).

    Args:
        runs (list[focal_eiou_d2.tools.run_store.Run]): the planned runs.
        records (dict[str, dict]): finished result records by run name.
        baseline (focal_eiou_d2.tools.run_store.Row): the reference row.

    Returns:
        list[dict]: one entry per (row, setting) with ``label``, ``row``, ``setting``, ``seeds``,
        per metric ``[mean, std]``, ``delta`` per metric ``[mean, half_width, pairs]``,
        ``ap_per_iou`` ``[[mean, std], ...]`` and ``delta_per_iou`` ``[[mean, half_width,
        pairs], ...]`` (per IoU threshold).
    """
    groups = {}
    for run in runs:
        if run.name in records:
            groups.setdefault((run.row, run.setting), {})[run.seed] = records[run.name]
    summary = []
    for (row, setting), by_seed in groups.items():
        entry = {
            "label": row.label,
            "row": row.text,
            "setting": [list(item) for item in setting],
            "seeds": sorted(by_seed),
            "baseline": row == baseline,
        }
        for metric in METRICS:
            entry[metric] = list(mean_std([r["metrics"][metric] for r in by_seed.values()]))
        per_iou = zip(*(r["ap_per_iou"] for r in by_seed.values()), strict=True)
        entry["ap_per_iou"] = [list(mean_std(values)) for values in per_iou]
        reference = groups.get((baseline, setting), {})
        seeds = sorted(set(by_seed) & set(reference))
        entry["delta"] = {
            metric: list(
                paired_difference(
                    [by_seed[s]["metrics"][metric] for s in seeds],
                    [reference[s]["metrics"][metric] for s in seeds],
                )
            )
            for metric in METRICS
        }
        entry["delta_per_iou"] = [
            list(
                paired_difference(
                    [by_seed[s]["ap_per_iou"][i] for s in seeds],
                    [reference[s]["ap_per_iou"][i] for s in seeds],
                )
            )
            for i in range(len(IOU_THRESHOLDS))
        ]
        summary.append(entry)
    return summary


def format_markdown(summary, baseline_label):
    """The table: mean +- std per metric, then AP and AP75 minus the baseline with 95 % CIs."""
    settings = any(entry["setting"] for entry in summary)
    header = ["row"] + (["setting"] if settings else []) + ["seeds", *METRICS]
    header += [f"ΔAP vs {baseline_label}", f"ΔAP75 vs {baseline_label}"]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for entry in summary:
        cells = [entry["label"]]
        if settings:
            cells.append(", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in entry["setting"]))
        cells.append(str(len(entry["seeds"])))
        cells += [f"{entry[m][0]:.2f} ± {entry[m][1]:.2f}" for m in METRICS]
        if entry["baseline"]:
            cells += ["baseline", "baseline"]
        else:
            cells += [format_delta(entry["delta"][m]) for m in ("AP", "AP75")]
        lines.append("| " + " | ".join(cells) + " |")
    note = (
        f"Mean ± sample std over seeds. Δ: mean difference to {baseline_label} paired by seed, "
        f"± half width of its {CONFIDENCE:.0%} confidence interval (Student t); bold where the "
        "interval excludes 0."
    )
    return "\n".join(lines) + "\n\n" + note


def format_delta(delta):
    """``+1.23 ± 0.45`` (bold when the interval excludes 0), "-" without pairs."""
    mean, half_width, pairs = delta
    if pairs == 0 or np.isnan(mean):
        return "-"
    if np.isnan(half_width):
        return f"{mean:+.2f} (1 pair)"
    text = f"{mean:+.2f} ± {half_width:.2f}"
    return f"**{text}**" if abs(mean) > half_width else text


def plot_ap_vs_iou(summary, baseline_label, path):
    """Left: mean AP at each IoU threshold, one curve per (row, setting), with +-std error bars.
    Right: AP minus the baseline's, paired by seed, with its 95 % confidence interval, for each
    row with at least 2 seeds paired (where the left panel's curves are too close to tell
    apart)."""
    figure = Figure(figsize=(12, 4.5), dpi=120)
    absolute, relative = figure.subplots(1, 2)
    for entry in summary:
        label = entry["label"] + "".join(f", {v}" for _, v in entry["setting"])
        means, stds = zip(*entry["ap_per_iou"], strict=True)
        absolute.errorbar(IOU_THRESHOLDS, means, yerr=stds, marker="o", capsize=3, label=label)
        deltas, half_widths, pairs = zip(*entry["delta_per_iou"], strict=True)
        if entry["baseline"] or min(pairs) < 2:
            relative.plot([], [])  # keeps each row's colour in both panels
            continue
        relative.errorbar(
            IOU_THRESHOLDS, deltas, yerr=half_widths, marker="o", capsize=3, label=label
        )
    relative.axhline(0, color="black", linewidth=0.8)
    for axes, ylabel in ((absolute, "AP (%)"), (relative, f"AP - AP of {baseline_label} (%)")):
        axes.set_xlabel("IoU threshold")
        axes.set_ylabel(ylabel)
        axes.grid(alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(loc="lower left", fontsize="small")
    relative.set_title("paired by seed, 95 % confidence interval", fontsize="medium")
    figure.tight_layout()
    figure.savefig(path)


def plot_sweep(summary, settings, path):
    """AP against the values of each ``--set`` key (Fig. 9's layout), one line per row, with the
    95 % confidence interval of each mean (Student t) as error bars."""
    figure = Figure(figsize=(5.5 * len(settings), 4), dpi=120)
    panels = np.atleast_1d(figure.subplots(1, len(settings)))
    for axes, (key, values) in zip(panels, settings, strict=True):
        for label in dict.fromkeys(entry["label"] for entry in summary):
            entries = [e for e in summary if e["label"] == label]
            entries.sort(key=lambda e: values.index(dict(map(tuple, e["setting"]))[key]))
            x = [dict(map(tuple, e["setting"]))[key] for e in entries]
            means = [e["AP"][0] for e in entries]
            errors = [mean_half_width(e["AP"][1], len(e["seeds"])) for e in entries]
            axes.errorbar(x, means, yerr=errors, marker="o", capsize=3, label=label)
        axes.set_xlabel(key.rsplit(".", 1)[-1])
        axes.set_ylabel("AP (%)")
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path)


def write_outputs(summary, settings, meta, output_dir, baseline_label):
    """Write table.md, table.json, ap_vs_iou.png (and sweep.png) to ``output_dir``.

    Args:
        summary (list[dict]): the entries of :func:`summarize`.
        settings (list[tuple[str, tuple[str, ...]]]): the grid (sweep.png when not empty).
        meta (dict): what table.json records beside the rows (command, fingerprint, ...).
        output_dir (str): the folder.
        baseline_label (str): the baseline row's label.

    Returns:
        str: the markdown table.
    """
    table = format_markdown(summary, baseline_label)
    with open(os.path.join(output_dir, "table.md"), "w") as f:
        f.write(table + "\n")
    with open(os.path.join(output_dir, "table.json"), "w") as f:
        json.dump({**meta, "rows": summary}, f, indent=2)
    plot_ap_vs_iou(summary, baseline_label, os.path.join(output_dir, "ap_vs_iou.png"))
    if settings:
        plot_sweep(summary, settings, os.path.join(output_dir, "sweep.png"))
    return table
