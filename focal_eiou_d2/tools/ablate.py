"""Train one config with several box losses and seeds; tabulate COCO AP as the paper's Table 1.

    python -m focal_eiou_d2.tools.ablate \\
        --config-file configs/quickstart/retinanet_R_18_FPN_shapes.yaml \\
        --losses smooth_l1 giou ciou eiou focal_eiou --seeds 0 1 2 --output-dir output/ablation

Each (loss, seed) run trains and evaluates in its own process through the quickstart job, in
``<output-dir>/<loss>/seed<seed>``. The runner is resumable: finished runs (whose results match
their config) are not redone, and an interrupted run resumes from its last checkpoint. Loss weights
follow the paper (Sec. 5.2): 1.0 for the l_n-norm losses, 2.5 for the IoU-based losses.

Writes ``table.md`` and ``table.json`` (mean +- sample standard deviation over seeds of AP, AP50,
AP75, APs, APm, APl) and ``ap_vs_iou.png`` (mean AP at each IoU threshold per loss).
``--finished-only`` writes them from the runs finished so far, training none (the ``seeds``
column says how many runs each row averages).
"""

import argparse
import json
import os
import subprocess
import sys

import numpy as np
from matplotlib.figure import Figure

from focal_eiou_d2.layers import BOX_LOSSES
from focal_eiou_d2.tools.quickstart import AP_KEYS, RESULTS_FILE, build_cfg, cached_results
from focal_eiou_d2.visualization import loss_type

DEFAULT_LOSSES = ("smooth_l1", "giou", "ciou", "eiou", "focal_eiou")


def loss_weight(loss):
    """The paper's box-loss weight: 1.0 for l_n-norm losses, 2.5 for IoU-based losses."""
    return 2.5 if BOX_LOSSES[loss].on_boxes else 1.0


def run_opts(cfg, loss, seed, output_dir):
    """Config overrides (KEY VALUE ...) of one run."""
    node = "RETINANET" if "RetinaNet" in cfg.MODEL.META_ARCHITECTURE else "ROI_BOX_HEAD"
    return [
        f"MODEL.{node}.BBOX_REG_LOSS_TYPE", loss,
        f"MODEL.{node}.BBOX_REG_LOSS_WEIGHT", str(loss_weight(loss)),
        "SEED", str(seed),
        "OUTPUT_DIR", output_dir,
    ]  # fmt: skip


def run_one(config_file, opts, train=True):
    """Train and evaluate one run in a fresh process; return its saved results.

    Returns:
        dict or None: the run's ``quickstart_results.json``; None for a run that has not finished
        when ``train`` is False.
    """
    cfg = build_cfg(config_file, opts)
    path = os.path.join(cfg.OUTPUT_DIR, RESULTS_FILE)
    saved = cached_results(cfg, path)
    if saved is not None:
        print(f"[ablate] {cfg.OUTPUT_DIR}: finished earlier, skipped", flush=True)
        return saved
    if not train:
        print(f"[ablate] {cfg.OUTPUT_DIR}: not finished, left out", flush=True)
        return None
    print(f"[ablate] {cfg.OUTPUT_DIR}: training", flush=True)
    command = [sys.executable, "-m", "focal_eiou_d2.tools.quickstart", "--config-file"]
    command += [config_file, "--num-visualizations", "0", *opts]
    subprocess.run(command, check=True)
    with open(path) as f:
        return json.load(f)


def mean_std(values):
    """Mean and sample standard deviation (0 for a single value); NaN if a value is NaN.

    COCOEvaluator reports NaN for a size band without objects or a model without detections.
    """
    values = np.asarray(values, dtype=np.float64)
    std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return float(values.mean()), std


def summarize(results):
    """Aggregate per-loss results over seeds.

    Args:
        results (dict[str, list[dict]]): loss -> the saved results of each seed.

    Returns:
        dict: loss -> {"seeds": n, metric: [mean, std] for AP_KEYS, "ap_per_iou": [[mean, std]]}.
    """
    summary = {}
    for loss, runs in results.items():
        row = {"seeds": len(runs)}
        for key in AP_KEYS:
            row[key] = list(mean_std([run["bbox"][key] for run in runs]))
        per_iou = zip(*(run["ap_per_iou"] for run in runs), strict=True)
        row["ap_per_iou"] = [list(mean_std(values)) for values in per_iou]
        summary[loss] = row
    return summary


def format_markdown(summary):
    """The Table 1 layout: one row per loss, AP columns as mean +- std over seeds."""
    lines = ["| loss | seeds | " + " | ".join(AP_KEYS) + " |", "|---" * (len(AP_KEYS) + 2) + "|"]
    for loss, row in summary.items():
        cells = " | ".join(f"{row[k][0]:.1f} ± {row[k][1]:.1f}" for k in AP_KEYS)
        lines.append(f"| {loss} | {row['seeds']} | {cells} |")
    return "\n".join(lines)


def plot_ap_vs_iou(summary, thresholds, path):
    """Mean AP at each IoU threshold, one curve per loss, with +-std error bars."""
    figure = Figure(figsize=(6, 4.5), dpi=120)
    axes = figure.subplots()
    for loss, row in summary.items():
        means, stds = zip(*row["ap_per_iou"], strict=True)
        axes.errorbar(thresholds, means, yerr=stds, marker="o", capsize=3, label=loss)
    axes.set_xlabel("IoU threshold")
    axes.set_ylabel("AP (%)")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower left")
    figure.tight_layout()
    figure.savefig(path)


def write_outputs(summary, thresholds, meta, output_dir):
    """Write table.md, table.json and ap_vs_iou.png; return the markdown table."""
    table = format_markdown(summary)
    with open(os.path.join(output_dir, "table.md"), "w") as f:
        f.write(table + "\n")
    with open(os.path.join(output_dir, "table.json"), "w") as f:
        json.dump({**meta, "iou_thresholds": thresholds, "losses": summary}, f, indent=2)
    plot_ap_vs_iou(summary, thresholds, os.path.join(output_dir, "ap_vs_iou.png"))
    return table


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config-file", required=True, help="the config every run starts from")
    parser.add_argument("--losses", nargs="+", default=DEFAULT_LOSSES, choices=sorted(BOX_LOSSES))
    parser.add_argument("--seeds", nargs="+", type=int, default=(0, 1, 2))
    parser.add_argument("--output-dir", default="output/ablation")
    parser.add_argument(
        "--finished-only", action="store_true", help="tabulate the runs finished so far; train none"
    )
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE ...")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    base = build_cfg(args.config_file, args.opts)
    results, thresholds = {loss: [] for loss in args.losses}, None
    for seed in args.seeds:  # seed by seed, so that a partial ablation covers every loss
        for loss in args.losses:
            run_dir = os.path.join(args.output_dir, loss, f"seed{seed}")
            opts = [*args.opts, *run_opts(base, loss, seed, run_dir)]
            saved = run_one(args.config_file, opts, train=not args.finished_only)
            if saved is not None:
                results[loss].append(saved)
                thresholds = saved["iou_thresholds"]
    results = {loss: runs for loss, runs in results.items() if runs}
    if not results:
        raise SystemExit("[ablate] no finished run to tabulate")
    meta = {"config_file": args.config_file, "opts": args.opts, "seeds": list(args.seeds)}
    meta["model"] = f"{base.MODEL.META_ARCHITECTURE} ({loss_type(base)} in the config)"
    print(write_outputs(summarize(results), thresholds, meta, args.output_dir))


if __name__ == "__main__":
    main()
