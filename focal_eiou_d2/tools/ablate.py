"""Train one config with several box losses, seeds and config values; tabulate the paper's way.

    python -m focal_eiou_d2.tools.ablate --config-file CONFIG \\
        --losses smooth_l1 eiou focal_eiou "smooth_l1[MODEL.RETINANET.BBOX_REG_LOSS_WEIGHT=0.25]" \\
        --seeds 0 1 2 3 4 --baseline smooth_l1 --output-dir output/ablation [KEY VALUE ...]

YAML configs and LazyConfig ``.py`` files are accepted (overrides as ``KEY VALUE`` or
``key=value``); the loss is set on the box-loss node the model has (found in the model, not by
its name). Rows are losses, each optionally with its own overrides in brackets;
``--set KEY=V1,V2,...`` adds a grid over config values (e.g. Fig. 9's
``--set MODEL.FOCAL_EIOU.GAMMA=0.25,0.5,1.0,2.0``; a float key takes values written as floats),
run for every row. Every (row, grid value, seed) trains and evaluates in its own process through
the quickstart job, in ``<output-dir>/runs/<run>``; the box-loss weight follows the paper
(Sec. 5.2: 1.0 for l_n-norm losses, 2.5 for IoU-based losses) unless a row sets it.

With ``--pretrain CONFIG`` every run starts from one shared backbone: the runner trains CONFIG
once (in ``<output-dir>/pretrain``), exports its ResNet (``backbone.pth``) and passes it as the
runs' initial weights; FPN and heads start from each run's seed. The backbone's sha256 is part of
the results' fingerprint. ``--pretrain FILE.pth`` starts the runs from such an exported backbone
as it is (one kept in git, so that every machine starts from the same bytes: a pretraining
trained again elsewhere need not reproduce them).

Each finished run leaves a small result file in ``<results-dir>/<run>.json`` (default
``<output-dir>/results``): its metrics and a fingerprint (training code, protocol, torch version,
device; see ``focal_eiou_d2.engine.fingerprint``). The tables are rebuilt from those files, so a
results folder kept in git lets a later session on a machine of the same fingerprint continue
where one stopped; a table never mixes
fingerprints, and a results folder holds the runs of one fingerprint: the runner refuses to train
into a folder with result files of another (other code, protocol, torch, hardware or backbone). An
interrupted run resumes exactly where it stopped (so its seed stays paired), and finished runs are
not redone.

Writes ``table.md`` / ``table.json`` to the output folder: per row and grid value the mean +- sample
standard deviation over seeds of AP, AP50, AP75, AP85 and AP95, and the difference to the
baseline row paired by seed, with its 95 % confidence interval (Student t); ``ap_vs_iou.png`` (AP
and its paired difference to the baseline at each IoU threshold); and ``sweep.png`` (AP against
each ``--set`` value, Fig. 9's layout). A run whose config is that of a finished run (a grid
value that is the default, a row that sets the paper's weight) reuses its result.
``--finished-only`` tabulates without training (into another ``--output-dir``, also while an
ablation trains into the same results folder), on any machine: without the pretraining's folder
(a fresh clone) it takes the backbone digest from the result files, and the fingerprint too
where they have another machine's or code's (one, never mixed).
"""

import argparse
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from itertools import product

import numpy as np
from matplotlib.figure import Figure

from focal_eiou_d2.data import DatasetError, add_coco_dataset_argument
from focal_eiou_d2.engine import OutputDirError, load_run_config
from focal_eiou_d2.engine.checkpoint import export_weights
from focal_eiou_d2.engine.fingerprint import fingerprint, git_commit
from focal_eiou_d2.engine.run_dir import lock_output_dir
from focal_eiou_d2.evaluation import IOU_THRESHOLDS
from focal_eiou_d2.evaluation.statistics import (
    CONFIDENCE,
    mean_half_width,
    mean_std,
    paired_difference,
)
from focal_eiou_d2.layers import BOX_LOSSES
from focal_eiou_d2.tools.quickstart import FINAL_WEIGHTS, RESULTS_FILE, file_digest

DEFAULT_LOSSES = ("smooth_l1", "giou", "ciou", "eiou", "focal_eiou")
# The columns of the tables: COCO AP and AP at four IoU thresholds.
METRICS = ("AP", "AP50", "AP75", "AP85", "AP95")
# What --pretrain keeps of the pretraining run: the ResNet of the detector's backbone.
BACKBONE_PREFIX = "backbone.bottom_up."
# Names in the paper's tables.
PAPER_NAMES = {
    "smooth_l1": "Smooth L1",
    "iou": "IoU",
    "giou": "GIoU",
    "diou": "DIoU",
    "ciou": "CIoU",
    "eiou": "EIoU",
    "focal_l1": "FocalL1",
    "balanced_l1": "BalancedL1",
    "focal_eiou_v1": "Focal-EIoU v1",
    "focal_eiou": "Focal-EIoU",
    "focal_eiou_star": "Focal-EIoU*",
}


@dataclass(frozen=True)
class Row:
    """A row of the table: a loss, with overrides of its own (KEY, VALUE) pairs."""

    loss: str
    overrides: tuple = ()

    @property
    def label(self):
        name = PAPER_NAMES.get(self.loss, self.loss)
        extra = ", ".join(f"{key.rsplit('.', 1)[-1]}={value}" for key, value in self.overrides)
        return f"{name} ({extra})" if extra else name

    @property
    def text(self):
        """The command-line form, e.g. ``smooth_l1[MODEL.RETINANET.BBOX_REG_LOSS_WEIGHT=0.25]``."""
        extra = ",".join(f"{key}={value}" for key, value in self.overrides)
        return f"{self.loss}[{extra}]" if extra else self.loss


def parse_row(text):
    """A :class:`Row` from ``LOSS`` or ``LOSS[KEY=VALUE,KEY=VALUE]``."""
    match = re.fullmatch(r"([a-z0-9_]+)(?:\[(.+)\])?", text)
    if not match or match.group(1) not in BOX_LOSSES:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not LOSS or LOSS[KEY=VALUE,...] with LOSS among {', '.join(BOX_LOSSES)}"
        )
    overrides = []
    for item in (match.group(2) or "").split(",") if match.group(2) else []:
        key, _, value = item.partition("=")
        if not key or not value:
            raise argparse.ArgumentTypeError(f"{item!r} in {text!r} is not KEY=VALUE")
        overrides.append((key, value))
    return Row(match.group(1), tuple(overrides))


def parse_setting(text):
    """``KEY=V1,V2,...`` as (KEY, (V1, V2, ...))."""
    key, _, values = text.partition("=")
    if not key or not values or "" in values.split(","):
        raise argparse.ArgumentTypeError(f"--set {text!r} is not KEY=V1,V2,...")
    return key, tuple(values.split(","))


@dataclass
class Run:
    """One training: a row, one value of each grid setting, a seed."""

    row: Row
    setting: tuple  # ((KEY, VALUE), ...)
    seed: int
    name: str = field(init=False)

    def __post_init__(self):
        parts = [self.row.text, *(f"{key}={value}" for key, value in self.setting)]
        self.name = re.sub(r"[^A-Za-z0-9_.=-]+", "_", "__".join(parts)) + f"__seed{self.seed}"

    def opts(self, base, output_dir):
        """Config overrides of this run in the syntax of ``base``'s kind (KEY VALUE for YAML,
        key=value for LazyConfig), after the base overrides: the loss of the model's box-loss
        node with the paper's weight, the row's and the grid's values, the seed, the folder."""
        opts = base.loss_overrides(self.row.loss)
        for key, value in (*self.row.overrides, *self.setting):
            opts += base.override(key, value)
        return (
            opts
            + base.override(base.SEED_KEY, self.seed)
            + base.override(base.OUTPUT_KEY, output_dir)
        )


def plan(rows, settings, seeds):
    """Every run, seed by seed (so that a partial ablation covers every row)."""
    grid = list(product(*([(key, value) for value in values] for key, values in settings)))
    return [Run(row, setting, seed) for seed in seeds for row in rows for setting in grid]


def run_config(args, base, run):
    """The config ``run`` trains with (without its output folder)."""
    return load_run_config(args.config_file, [*args.opts, *run.opts(base, "unused")])


def protocol_digest(args):
    """A hash of the config every run starts from, without the seed and the output folder."""
    base = load_run_config(args.config_file, args.opts)
    return load_run_config(
        args.config_file, [*args.opts, *base.override(base.SEED_KEY, -1)]
    ).digest()


def quickstart(config_file, opts, output_dir, coco_options):
    """Train and evaluate one config in a fresh process (the quickstart job); return its saved
    results."""
    command = [sys.executable, "-m", "focal_eiou_d2.tools.quickstart", *coco_options]
    command += ["--config-file", config_file, "--output-dir", output_dir]
    command += ["--num-visualizations", "0", *opts]
    subprocess.run(command, check=True)
    with open(os.path.join(output_dir, RESULTS_FILE)) as f:
        return json.load(f)


def train(run, args, base, extra_opts, coco_options):
    """Train and evaluate one run; return its quickstart results."""
    print(f"[ablate] {run.name}: training", flush=True)
    run_dir = os.path.join(args.output_dir, "runs", run.name)
    opts = [*args.opts, *extra_opts, *run.opts(base, run_dir)]
    return quickstart(args.config_file, opts, run_dir, coco_options)


def pretrained_backbone(args, coco_options, train_it):
    """The backbone every run starts from (``--pretrain``): the given ``.pth`` file, or the
    pretraining config trained once, in <output-dir>/pretrain, and exported as
    <output-dir>/pretrain/backbone.pth.

    Args:
        train_it (bool): train the pretraining if it has not finished (else raise).

    Returns:
        tuple[str, str]: the backbone file and its sha256 (the runs' fingerprint includes it).

    Raises:
        FileNotFoundError: ``--pretrain`` names a ``.pth`` file that does not exist.
    """
    if args.pretrain.endswith(".pth"):
        if not os.path.isfile(args.pretrain):
            raise FileNotFoundError(
                f"--pretrain {args.pretrain}: no such backbone file (give an exported "
                "backbone.pth, or the pretraining config to train it)"
            )
        return args.pretrain, file_digest(args.pretrain)
    folder = os.path.join(args.output_dir, "pretrain")
    final = os.path.join(folder, FINAL_WEIGHTS)
    if not os.path.isfile(os.path.join(folder, RESULTS_FILE)):
        if not train_it:
            raise OutputDirError(f"the pretraining in {folder} has not finished")
        print(f"[ablate] {folder}: pretraining the backbone", flush=True)
    if train_it:
        quickstart(args.pretrain, [], folder, coco_options)  # reused when finished
    backbone = os.path.join(folder, "backbone.pth")
    if not os.path.isfile(backbone):
        export_weights(final, backbone, BACKBONE_PREFIX)
    return backbone, file_digest(backbone)


BACKBONE_TAG = "+backbone:"


def base_protocol(digest):
    """A recorded protocol digest without its backbone part (``<protocol>+backbone:<digest>``)."""
    return digest.split(BACKBONE_TAG)[0]


def recorded_backbones(results_dir, protocol):
    """The backbone digests (16 hexadecimal digits) of the result files of ``protocol`` (the
    protocol digest without its backbone part) in ``results_dir``, as a set."""
    recorded = (
        r.get("fingerprint", {}).get("protocol", "") for r in read_results(results_dir).values()
    )
    return {
        digest.split(BACKBONE_TAG)[1]
        for digest in recorded
        if BACKBONE_TAG in digest and base_protocol(digest) == protocol
    }


def check_one_fingerprint(results_dir, wanted, backbone_known=True):
    """Refuse to train into a results folder that holds a result file of another fingerprint (or
    of none): its runs could never be tabulated with these, and a run of the same name would
    replace it. A results folder holds the runs of one fingerprint.

    Args:
        results_dir (str): the folder of the result files.
        wanted (dict): this machine's fingerprint of the runs.
        backbone_known (bool): False before the pretraining: the protocols are compared without
            their backbone part.

    Raises:
        SystemExit: the folder has such a result file; the message names what differs.
    """
    for name, record in sorted(read_results(results_dir).items()):
        recorded = record.get("fingerprint") if isinstance(record, dict) else None
        if not isinstance(recorded, dict):
            differs = "no fingerprint"
        else:
            if not backbone_known:
                recorded = {**recorded, "protocol": base_protocol(str(recorded.get("protocol")))}
            if recorded == wanted:
                continue
            differs = "; ".join(
                f"{key} {recorded.get(key)} (here: {wanted.get(key)})"
                for key in sorted(set(recorded) | set(wanted))
                if recorded.get(key) != wanted.get(key)
            )
        backbone_hint = ""
        if BACKBONE_TAG in differs:
            backbone_hint = " (or, for the backbone, give the kept file: --pretrain FILE.pth)"
        sys.exit(
            f"ablate: error: {results_dir} holds runs of another fingerprint ({name}: {differs}); "
            "runs of other code, protocol, torch, hardware or backbone are never tabulated "
            f"together: train into another --results-dir{backbone_hint}"
        )


def recorded_backbone(results_dir, protocol, missing):
    """The shared backbone the result files of ``protocol`` were trained from, for tabulating
    without the pretraining (``--finished-only`` in a fresh clone, whose ``output/`` is empty).

    Args:
        results_dir (str): the folder of the result files.
        protocol (str): the protocol digest without its backbone part.
        missing (Exception): why the pretraining's backbone cannot be read.

    Returns:
        str: the backbone digest (16 hexadecimal digits) of every result file of ``protocol``.

    Raises:
        SystemExit: no result file of ``protocol``, or files of several backbones.
    """
    digests = recorded_backbones(results_dir, protocol)
    if len(digests) != 1:
        found = f"backbones {', '.join(sorted(digests))}" if digests else "no result file"
        sys.exit(
            f"ablate: error: {missing}, and {results_dir} has {found} of this protocol; train "
            "the pretraining (run without --finished-only) to tabulate against its backbone"
        )
    (digest,) = digests
    print(
        f"[ablate] {missing}: tabulating the result files of backbone {digest} found in "
        f"{results_dir}",
        flush=True,
    )
    return digest


def tabulated_fingerprint(results_dir, wanted):
    """The fingerprint whose result files ``--finished-only`` tabulates: this machine's when it
    has result files of the protocol, else the only one they have (results trained with other
    code, torch or hardware are still one consistent table; they are never mixed).

    Args:
        results_dir (str): the folder of the result files.
        wanted (dict): this machine's fingerprint of the protocol.

    Raises:
        SystemExit: the protocol's result files have several fingerprints, none of them this
            machine's.
    """
    found = {
        json.dumps(record["fingerprint"], sort_keys=True)
        for record in read_results(results_dir).values()
        if record.get("fingerprint", {}).get("protocol") == wanted["protocol"]
    }
    if not found or json.dumps(wanted, sort_keys=True) in found:
        return wanted
    if len(found) > 1:
        sys.exit(
            f"ablate: error: {results_dir} has result files of this protocol under "
            f"{len(found)} fingerprints, none of them this machine's ({wanted}): tabulate them "
            "on the machine and code that trained them"
        )
    (recorded,) = found
    print(f"[ablate] tabulating the result files of another machine or code: {recorded}")
    return json.loads(recorded)


def result_record(run, saved, print_fingerprint):
    """The small result file of a finished run."""
    ap_per_iou = dict(zip(IOU_THRESHOLDS, saved["ap_per_iou"], strict=True))
    metrics = {"AP": saved["bbox"]["AP"]}
    metrics.update({f"AP{round(t * 100)}": ap_per_iou[t] for t in (0.5, 0.75, 0.85, 0.95)})
    return {
        "row": run.row.text,
        "setting": [list(item) for item in run.setting],
        "seed": run.seed,
        "metrics": metrics,
        "bbox": saved["bbox"],
        "ap_per_iou": saved["ap_per_iou"],
        "fingerprint": print_fingerprint,
        "commit": git_commit(),
    }


def read_results(results_dir):
    """Every result file of ``results_dir`` (none if it does not exist), by run name."""
    records = {}
    if os.path.isdir(results_dir):
        for name in sorted(os.listdir(results_dir)):
            if name.endswith(".json"):
                with open(os.path.join(results_dir, name)) as f:
                    records[name[: -len(".json")]] = json.load(f)
    return records


def load_results(results_dir, wanted):
    """The result files of ``results_dir`` whose fingerprint is ``wanted``, by run name; and the
    names of those of another fingerprint."""
    found, other = {}, []
    for name, record in read_results(results_dir).items():
        if record.get("fingerprint") == wanted:
            found[name] = record
        else:
            other.append(name)
    return found, other


def finished_configs(records, losses, digest_of):
    """The finished runs by the hash of their config, so that a planned run with the config of a
    finished one (e.g. ``--set MODEL.FOCAL_EIOU.GAMMA=0.5`` and the ``focal_eiou`` row, when 0.5
    is the default) reuses its result instead of training again.

    Args:
        records (dict[str, dict]): finished result records by run name (each has ``row``,
            ``setting`` and ``seed``).
        losses (set[str]): the planned rows' losses (records of other losses cannot match).
        digest_of (callable): a :class:`Run` -> the hash of its config, seed included.

    Returns:
        dict[str, tuple[str, dict]]: by config hash, the name and record of a finished run.
        Records this runner can no longer read as a run are left out, with one line each.
    """
    found = {}
    for name, record in records.items():
        if record["row"].split("[")[0] not in losses:
            continue
        try:
            setting = tuple(tuple(item) for item in record["setting"])
            finished = Run(parse_row(record["row"]), setting, record["seed"])
            found.setdefault(digest_of(finished), (name, record))
        except (argparse.ArgumentTypeError, KeyError, ValueError) as error:
            print(f"[ablate] {name}: not a run of this config ({error}), not reused", flush=True)
    return found


def summarize(runs, records, baseline):
    """Rows of the table: per (row, setting) the mean and std over seeds and the paired
    difference to ``baseline`` (same setting, same seeds).

    Args:
        runs (list[Run]): the planned runs.
        records (dict[str, dict]): finished result records by run name.
        baseline (Row): the reference row.

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
    """Write table.md, table.json, ap_vs_iou.png (and sweep.png); return the markdown table."""
    table = format_markdown(summary, baseline_label)
    with open(os.path.join(output_dir, "table.md"), "w") as f:
        f.write(table + "\n")
    with open(os.path.join(output_dir, "table.json"), "w") as f:
        json.dump({**meta, "rows": summary}, f, indent=2)
    plot_ap_vs_iou(summary, baseline_label, os.path.join(output_dir, "ap_vs_iou.png"))
    if settings:
        plot_sweep(summary, settings, os.path.join(output_dir, "sweep.png"))
    return table


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config-file", required=True, help="the config every run starts from")
    parser.add_argument(
        "--losses",
        nargs="+",
        type=parse_row,
        default=[Row(loss) for loss in DEFAULT_LOSSES],
        metavar="LOSS[KEY=VALUE,...]",
        help=f"the rows (default: {' '.join(DEFAULT_LOSSES)})",
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=(0, 1, 2))
    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        type=parse_setting,
        default=[],
        metavar="KEY=V1,V2,...",
        help="a grid over config values, run for every row (repeatable)",
    )
    parser.add_argument(
        "--baseline", type=parse_row, help="the row the differences refer to (default: the first)"
    )
    parser.add_argument(
        "--pretrain",
        metavar="CONFIG_OR_PTH",
        help="train this config once and start every run from its backbone (ResNet) weights; "
        "or start them from a backbone file such a pretraining exported (.pth)",
    )
    parser.add_argument("--output-dir", default="output/ablation")
    parser.add_argument(
        "--results-dir", help="where the small result files go (default: <output-dir>/results)"
    )
    parser.add_argument(
        "--finished-only", action="store_true", help="tabulate the runs finished so far; train none"
    )
    add_coco_dataset_argument(parser)
    parser.add_argument(
        "opts",
        nargs=argparse.REMAINDER,
        help="config overrides: KEY VALUE ... (YAML), key=value ... (LazyConfig)",
    )
    args = parser.parse_args(argv)
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f"--seeds repeats a seed: {args.seeds}")
    if len(set(args.losses)) != len(args.losses):
        parser.error("--losses repeats a row")
    if any(seed < 0 for seed in args.seeds):
        parser.error(f"--seeds must be >= 0, got {args.seeds}")
    args.baseline = args.baseline or args.losses[0]
    if args.baseline not in args.losses:
        parser.error(f"--baseline {args.baseline.text} is not among --losses")
    args.results_dir = args.results_dir or os.path.join(args.output_dir, "results")
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        base = load_run_config(args.config_file, args.opts, coco_datasets=args.coco_datasets)
        for run in plan(args.losses, args.settings, args.seeds[:1]):
            run_config(args, base, run)  # checks the rows' and grid's values
        lock_output_dir(args.output_dir)
        if not args.finished_only:  # tabulating reads result files while other runs add some
            lock_output_dir(args.results_dir)
    except (OutputDirError, DatasetError, FileNotFoundError, KeyError, ValueError) as error:
        sys.exit(f"ablate: error: {error}")
    coco_options = [item for d in args.coco_datasets for item in
                    ("--coco-dataset", d.name, d.json_file, d.image_root)]  # fmt: skip
    protocol, extra_opts = protocol_digest(args), []
    recorded_protocol = protocol  # with the backbone's digest, as the result files record it
    if not args.finished_only:  # before the pretraining, which takes a while
        check_one_fingerprint(
            args.results_dir, fingerprint(protocol, base.device), backbone_known=not args.pretrain
        )
    if args.pretrain:
        try:
            backbone, backbone_digest = pretrained_backbone(
                args, coco_options, train_it=not args.finished_only
            )
            extra_opts = base.override(base.WEIGHTS_KEY, backbone)
        except FileNotFoundError as error:
            sys.exit(f"ablate: error: {error}")
        except OutputDirError as error:
            if not args.finished_only:
                sys.exit(f"ablate: error: {error}")
            backbone_digest = recorded_backbone(args.results_dir, protocol, error)
        recorded_protocol += f"{BACKBONE_TAG}{backbone_digest[:16]}"
    wanted = fingerprint(recorded_protocol, base.device)
    if args.finished_only:
        wanted = tabulated_fingerprint(args.results_dir, wanted)
    elif args.pretrain:
        check_one_fingerprint(args.results_dir, wanted)
    runs = plan(args.losses, args.settings, args.seeds)
    records, other = load_results(args.results_dir, wanted)

    def digest_of(run):
        return run_config(args, base, run).digest()

    finished = finished_configs(records, {row.loss for row in args.losses}, digest_of)
    for run in runs:
        if run.name in records:
            print(f"[ablate] {run.name}: finished earlier, skipped", flush=True)
            continue
        digest = digest_of(run)
        if digest in finished:
            source, records[run.name] = finished[digest]
            print(f"[ablate] {run.name}: the config of {source}, finished earlier", flush=True)
        elif args.finished_only:
            print(f"[ablate] {run.name}: not finished, left out", flush=True)
        else:
            saved = train(run, args, base, extra_opts, coco_options)
            record = result_record(run, saved, wanted)
            partial = os.path.join(args.results_dir, run.name + ".json.partial")
            with open(partial, "w") as f:
                json.dump(record, f, indent=1, sort_keys=True)
            os.replace(partial, os.path.join(args.results_dir, run.name + ".json"))
            records[run.name], finished[digest] = record, (run.name, record)
    other = [name for name in other if name not in records]
    if other:
        print(
            f"[ablate] {len(other)} result files of another fingerprint (code, protocol, torch "
            f"or device) in {args.results_dir} were left out",
            flush=True,
        )
    summary = summarize(runs, records, args.baseline)
    if not summary:
        sys.exit("ablate: no finished run to tabulate")
    meta = {
        "config_file": args.config_file,
        "opts": args.opts,
        "model": f"{base.architecture} ({base.loss_type} in the config)",
        "baseline": args.baseline.text,
        "fingerprint": wanted,
        "command": " ".join(sys.argv),
    }
    print(write_outputs(summary, args.settings, meta, args.output_dir, args.baseline.label))


if __name__ == "__main__":
    main()
