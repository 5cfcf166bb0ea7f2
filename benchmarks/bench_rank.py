"""Benchmark of the ranking (not a test): how narrow its paired 95 % intervals get in an hour.

Runs ``python -m focal_eiou_d2.tools.rank`` on the embedded one-class shapes data under the
reproduction protocol (docs/reproduction.md):
``configs/reproduction/retinanet_R_18_FPN_shapes1.yaml`` (RetinaNet R-18 FPN, 600 iterations of
8 images on ``shapes_1class_train``, evaluated on the 500 images of ``shapes_1class_val``), every
run from the kept backbone
``reproduction/backbones/retinanet_R_18_FPN_shapes1.pth`` (``--pretrain FILE.pth``; the config
freezes it), for smooth L1 (the baseline), EIoU and Focal-EIoU, with ``--budget HOURS``: the
ranking takes the most seeds (at least 2) whose runs fit by its warm-up's estimate. Trailing
overrides apply to every training, e.g. another schedule ``SOLVER.MAX_ITER 300 SOLVER.STEPS
"(225, 275)"`` or evaluation set ``DATASETS.TEST "('shapes_1class_val',)"``. ``--output`` must
not exist: the ranking resumes a folder, and a resumed ranking would time nothing.

Then it reads the ranking's ``report.json`` and prints the wall time of the whole command (warm-up,
runs, report), the seeds, the schedule and each loss's AP, AP50 and AP75 difference to smooth L1,
paired by seed, with the half width of its 95 % interval (Student t over the seeds, as the report
gives it) and the paired standard deviation; and the AP half width normalized to one hour of this
machine, with the half width taken to scale as 1/sqrt(seeds) and the seeds as the time:
``h_1h = h * sqrt(wall time / 1 h)`` (the Student t quantile of the measured seed count is kept,
which overstates h_1h when an hour holds more seeds than were run).

On a CPU that other processes keep busy, set ``OMP_WAIT_POLICY=PASSIVE`` (the trainings inherit
it): OpenMP's default busy wait then costs the runs up to twice their time, not their numbers.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_rank.py --budget 1
    .venv/bin/python benchmarks/bench_rank.py --budget 0.05 --output /tmp/bench_rank \\
        SOLVER.MAX_ITER 10 INPUT.MIN_SIZE_TEST 128 INPUT.MAX_SIZE_TEST 128
"""

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "reproduction" / "retinanet_R_18_FPN_shapes1.yaml"
BACKBONE = REPO / "reproduction" / "backbones" / "retinanet_R_18_FPN_shapes1.pth"
LOSSES = ("smooth_l1", "eiou", "focal_eiou")  # the first is the baseline
METRICS = ("AP", "AP50", "AP75")
HOUR = 3600.0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--budget",
        type=float,
        default=1.0,
        metavar="HOURS",
        help="the ranking's --budget (default: %(default)g)",
    )
    parser.add_argument(
        "--output", default="output/bench_rank", help="the ranking's folder (must not exist)"
    )
    parser.add_argument("--json", help="also write the results to this path")
    parser.add_argument(
        "opts", nargs=argparse.REMAINDER, help="overrides of every training: KEY VALUE ..."
    )
    args = parser.parse_args(argv)
    if not args.budget > 0:
        parser.error(f"--budget must be > 0 hours, got {args.budget}")
    if os.path.exists(args.output):
        parser.error(f"--output {args.output} exists: delete it or name a new folder")
    return args


def rank_command(args):
    """The ranking's command line."""
    command = [sys.executable, "-m", "focal_eiou_d2.tools.rank", "--config-file", str(CONFIG)]
    command += ["--pretrain", str(BACKBONE), "--losses", *LOSSES, "--baseline", LOSSES[0]]
    return command + ["--budget", f"{args.budget:g}", "--output", args.output, *args.opts]


def load_average():
    """The load average over 1, 5 and 15 minutes, e.g. ``1.02 1.05 1.53``."""
    return " ".join(f"{load:.2f}" for load in os.getloadavg())


def number(value, spec=".2f"):
    """``value`` formatted, or ``-`` where the report has none (NaN, written as null: e.g. AP
    of a model that detects nothing yet)."""
    return "-" if value is None or math.isnan(value) else format(value, spec)


def intervals(report, wall_seconds):
    """Each loss's paired differences to the baseline, by metric, from ``report.json``: the
    report's ``difference``, ``half_width``, ``std`` and ``pairs``, and ``half_width_per_hour``
    (see the module's docstring; None where the report has no half width)."""
    per_hour = math.sqrt(wall_seconds / HOUR)
    found = {}
    for entry in report["losses"]:
        found[entry["loss"]] = {"seeds": entry["seeds"], "AP": entry["metrics"]["AP"]}
        for metric in METRICS:
            compared = entry["vs_baseline"][metric]
            half_width = compared["half_width"]
            found[entry["loss"]][f"vs_baseline_{metric}"] = {
                key: compared[key] for key in ("difference", "half_width", "std", "pairs")
            } | {"half_width_per_hour": None if half_width is None else half_width * per_hour}
    return found


def main(argv=None):
    args = parse_args(argv)
    setting = {"command": " ".join(rank_command(args)), "load_average_start": load_average()}
    start = time.monotonic()
    returncode = subprocess.run(rank_command(args)).returncode
    wall_seconds = time.monotonic() - start
    if returncode:
        sys.exit(f"bench_rank: the ranking failed (exit status {returncode}; see above)")
    with open(os.path.join(args.output, "report.json")) as f:
        report = json.load(f)
    results = intervals(report, wall_seconds)
    setting.update(
        {
            "load_average_end": load_average(),
            "wall_seconds": wall_seconds,
            "budget_hours": args.budget,
            "seeds": report["seeds"],
            "schedule": report["schedule"],
            "train_datasets": report["train_datasets"],
            "test_datasets": report["test_datasets"],
            "opts": list(args.opts),
            "fingerprint": report["fingerprint"],
        }
    )
    baseline = LOSSES[0]
    header = ["loss", "seeds", "AP (mean ± std)", *(f"Δ{m} vs {baseline}" for m in METRICS)]
    print(f"\n| {' | '.join(header)} | ΔAP half width per hour |")
    print("|---" * (len(header) + 1) + "|")
    for loss, row in results.items():
        cells = [f"{number(row['AP']['mean'])} ± {number(row['AP']['std'])}"]
        for metric in METRICS:
            compared = row[f"vs_baseline_{metric}"]
            cells.append(
                "baseline"
                if loss == baseline
                else f"{number(compared['difference'], '+.2f')} ± "
                f"{number(compared['half_width'])} (s {number(compared['std'])})"
            )
        per_hour = row["vs_baseline_AP"]["half_width_per_hour"]
        cells.append("baseline" if loss == baseline else f"± {number(per_hour)}")
        print(f"| {loss} | {len(row['seeds'])} | {' | '.join(cells)} |")
    minutes = wall_seconds / 60
    print(
        f"\nwall time {wall_seconds:.0f} s ({minutes:.1f} min) for --budget {args.budget:g} h; "
        f"seeds {report['seeds_text']}; {report['schedule']}; trained on "
        f"{', '.join(report['train_datasets'])}, evaluated on {', '.join(report['test_datasets'])}"
    )
    print(
        f"ΔAP half width per hour = half width * sqrt({wall_seconds:.0f} s / {HOUR:.0f} s) "
        "(half width ~ 1/sqrt(seeds), seeds ~ time; the Student t of the measured seeds kept); "
        "± after each difference: half width of its paired 95 % interval (Student t), s: the "
        "paired standard deviation"
    )
    print(", ".join(f"{key}: {value}" for key, value in setting.items()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({**setting, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
