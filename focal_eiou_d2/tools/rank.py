"""Which box loss for my data? Ranks box losses on one config and dataset with paired 95 %
confidence intervals.

    python -m focal_eiou_d2.tools.rank --config-file CONFIG \\
        --coco-dataset mine_train train.json images/ --coco-dataset mine_val val.json images/ \\
        --output output/rank [--losses LOSS ... | zoo] [--seeds N | --budget HOURS] \\
        [--baseline smooth_l1] [--pretrain CONFIG_OR_PTH] \\
        DATASETS.TRAIN "('mine_train',)" DATASETS.TEST "('mine_val',)"

A front end over the ablation runner's run store (``focal_eiou_d2.tools.run_store``): every
(loss, seed) trains and evaluates in its own process through the quickstart job, with the
paper's box-loss weight, and runs of one seed start from the same weights and see the same
images (the protocol of docs/reproduction.md). Config overrides (trailing ``KEY VALUE``, or
``key=value`` for a LazyConfig, or after ``--opts``) apply to every training: the runs, the
warm-up and the pretraining.

First a short timed warm-up (``--warmup-iters`` iterations of the baseline, evaluation included)
prices a run; the plan (runs, schedule, estimated time) is printed, then a progress line after
each run. With ``--budget HOURS`` the seed count is the largest (at least 2) whose runs fit, or
the command stops with the estimate.

``--pretrain CONFIG`` trains that config once with smooth L1 on the runs' training data (in
``<output>/pretrain``) and starts every run from its ResNet (``backbone.bottom_up.*``);
``--pretrain WEIGHTS.pth`` starts them from the ResNet of a checkpoint (e.g. COCO weights the
user has), of which nothing else is kept.

Interrupted, the same command resumes: finished runs are read from their result files in
``<output>/results`` (never mixed with runs of other code, config, torch, machine or backbone),
an interrupted run resumes where it stopped. Writes ``report.md``, ``report.json`` and
``ap_vs_iou.png`` to ``--output`` (``focal_eiou_d2.tools.rank_report``); each training's output
goes to ``<output>/logs``.
"""

import argparse
import os
import shlex
import sys
import time

from focal_eiou_d2 import ignore_torch_jit_deprecation

ignore_torch_jit_deprecation()  # raised by Detectron2 0.6's first import under recent PyTorch

from focal_eiou_d2.data import add_coco_dataset_argument  # noqa: E402
from focal_eiou_d2.engine import OutputDirError, WeightsError, load_run_config  # noqa: E402
from focal_eiou_d2.engine.checkpoint import export_weights  # noqa: E402
from focal_eiou_d2.engine.fingerprint import fingerprint  # noqa: E402
from focal_eiou_d2.engine.run_dir import lock_output_dir  # noqa: E402
from focal_eiou_d2.layers import BOX_LOSSES  # noqa: E402
from focal_eiou_d2.tools.cli import (  # noqa: E402
    add_opts_arguments,
    add_output_argument,
    parsed_opts,
    run_command,
)
from focal_eiou_d2.tools.rank_report import build_report, write_report  # noqa: E402
from focal_eiou_d2.tools.run_store import (  # noqa: E402
    BACKBONE_PREFIX,
    BACKBONE_TAG,
    Row,
    Run,
    check_one_fingerprint,
    check_plan,
    check_runs,
    coco_dataset_options,
    load_results,
    plan,
    pretrained_backbone,
    protocol_digest,
    quickstart,
    result_record,
    save_result,
)
from focal_eiou_d2.tools.run_timing import (  # noqa: E402
    format_duration,
    largest_seed_count,
    progress_line,
    schedule,
    warm_up,
)

DEFAULT_LOSSES = ("smooth_l1", "giou", "ciou", "eiou", "focal_eiou")
# What ``--losses zoo`` adds.
ZOO_LOSSES = ("siou", "shape_iou", "wiou_v1", "alpha_iou", "inner_iou", "nwd")
# The loss of the pretraining (Detectron2's default box loss).
PRETRAIN_LOSS = "smooth_l1"
DEFAULT_SEEDS = 3


def loss_name(text):
    """A loss of ``focal_eiou_d2.layers.BOX_LOSSES``, or ``zoo``."""
    if text != "zoo" and text not in BOX_LOSSES:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not zoo or a loss among {', '.join(BOX_LOSSES)}"
        )
    return text


def candidates(names, baseline):
    """The losses to rank: ``names`` (``zoo`` standing for :data:`ZOO_LOSSES`, added to the
    defaults when no other loss is named), each once, the baseline first if it is missing."""
    chosen = [name for name in names if name != "zoo"]
    if "zoo" in names:
        chosen = [*(chosen or DEFAULT_LOSSES), *ZOO_LOSSES]
    if baseline not in chosen:
        chosen.insert(0, baseline)
    return list(dict.fromkeys(chosen))


def positive(kind):
    """An argparse type: ``kind`` of the text, > 0."""

    def parse(text):
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    return parse


def parse_args(argv=None):
    """Parses the command line and checks its values (see ``--help``)."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config-file", required=True, help="the config every run starts from")
    parser.add_argument(
        "--losses",
        nargs="+",
        type=loss_name,
        default=list(DEFAULT_LOSSES),
        metavar="LOSS",
        help=f"the candidates (default: {' '.join(DEFAULT_LOSSES)}); zoo adds "
        f"{' '.join(ZOO_LOSSES)}",
    )
    count = parser.add_mutually_exclusive_group()
    count.add_argument(
        "--seeds", type=int, metavar="N", help=f"seeds 0..N-1, N >= 2 (default: {DEFAULT_SEEDS})"
    )
    count.add_argument(
        "--budget",
        type=positive(float),
        metavar="HOURS",
        help="the most seeds (at least 2) whose runs fit in HOURS, by the warm-up's estimate",
    )
    parser.add_argument(
        "--baseline", type=loss_name, default="smooth_l1", help="default: %(default)s"
    )
    parser.add_argument(
        "--pretrain",
        metavar="CONFIG_OR_PTH",
        help="a config to train once with smooth L1 on the runs' training data, or a .pth "
        "checkpoint: every run starts from its ResNet (backbone.bottom_up.*)",
    )
    parser.add_argument(
        "--warmup-iters",
        type=positive(int),
        default=20,
        help="iterations of the timed warm-up (default: %(default)s)",
    )
    add_output_argument(
        parser, "output/rank", "the runs, their results and the report (default: %(default)s)"
    )
    add_coco_dataset_argument(parser)
    add_opts_arguments(parser, "SOLVER.MAX_ITER 600", trailing=True)
    args = parser.parse_args(argv)
    args.opts = parsed_opts(parser, args, [args.config_file, args.pretrain])
    if args.baseline == "zoo":
        parser.error("--baseline takes one loss, not zoo")
    if args.seeds is not None and args.seeds < 2:
        parser.error(f"--seeds must be >= 2 (paired intervals need 2 seeds), got {args.seeds}")
    args.losses = candidates(args.losses, args.baseline)
    return args


def backbone_of_weights(weights, output_dir):
    """Writes the ResNet (``backbone.bottom_up.*``) of the checkpoint ``weights`` to
    ``<output_dir>/backbone/backbone.pth``.

    Returns:
        str: the written file.

    Raises:
        FileNotFoundError: ``weights`` does not exist.
        WeightsError: it is not a Detectron2 checkpoint with such entries.
    """
    if not os.path.isfile(weights):
        raise FileNotFoundError(f"--pretrain {weights}: no such weights file")
    target = os.path.join(output_dir, "backbone", "backbone.pth")
    os.makedirs(os.path.dirname(target), exist_ok=True)
    try:
        export_weights(weights, target, BACKBONE_PREFIX)
    except KeyError:
        raise WeightsError(
            f"--pretrain {weights}: not a Detectron2 checkpoint (no 'model' entry)"
        ) from None
    return target


class Pretraining:
    """The shared backbone of ``--pretrain``: a config to train once, or a checkpoint's ResNet.

    Args:
        args (argparse.Namespace): the parsed command line.
        coco_options (list[str]): ``--coco-dataset`` options of the training processes.
    """

    def __init__(self, args, coco_options):
        self.output, self.coco_options = args.output, coco_options
        self.source = args.pretrain
        self.is_config = not args.pretrain.endswith(".pth")
        self.opts = []
        if self.is_config:
            config = load_run_config(args.pretrain, args.opts, coco_datasets=args.coco_datasets)
            self.opts = [*args.opts, *config.loss_overrides(PRETRAIN_LOSS)]
            self.iterations = schedule(config)[0]
        else:
            self.source = backbone_of_weights(args.pretrain, args.output)
        self.log_file = os.path.join(args.output, "logs", "pretrain.log")

    def finished(self):
        """The backbone file and its sha256 if it exists, else None (the pretraining is due)."""
        try:
            return pretrained_backbone(self.source, self.output, self.coco_options, False)
        except OutputDirError:
            return None

    def train(self):
        """Trains the pretraining (or checks that the finished one is of this config).

        Returns:
            tuple[str, str]: the backbone file and its sha256.
        """
        return pretrained_backbone(
            self.source, self.output, self.coco_options, True, self.opts, self.log_file
        )


def describe_plan(args, base, runs, finished, estimate):
    """The plan's lines: runs, schedule, shared backbone, estimated time."""
    iterations, batch = schedule(base)
    losses = ", ".join(
        f"{loss} (baseline)" if loss == args.baseline else loss for loss in args.losses
    )
    seeds = max(run.seed for run in runs) + 1
    lines = [
        f"plan: {len(args.losses)} losses x {seeds} seeds = {len(runs)} runs, "
        f"{len(runs) - finished} to train ({finished} finished earlier); losses: {losses}; "
        f"seeds 0-{seeds - 1}, paired",
        f"schedule: {base.architecture}, {iterations} iterations of {batch} images per run; "
        f"training data {', '.join(base.train_datasets)}, evaluation on "
        f"{', '.join(base.test_datasets)}",
    ]
    if args.pretrain:
        lines.append(f"shared backbone: {estimate['backbone']}")
    lines.append(f"estimated time: {estimate['text']}")
    return lines


def rank(argv):
    """The ranking without its error boundary: checks everything, times a warm-up, prints the
    plan, trains what is missing and writes the report.

    Raises:
        OutputDirError, DatasetError, WeightsError, FileNotFoundError, KeyError, ValueError,
            CommandError: see :func:`focal_eiou_d2.tools.cli.user_errors`.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    start = time.monotonic()
    args = parse_args(argv)
    base = load_run_config(args.config_file, args.opts, coco_datasets=args.coco_datasets)
    rows = [Row(loss) for loss in args.losses]
    check_plan(base, rows, [])
    check_runs(args.config_file, args.opts, base, plan(rows, [], [0]))
    results_dir = os.path.join(args.output, "results")
    lock_output_dir(args.output)
    lock_output_dir(results_dir)
    coco_options = coco_dataset_options(args.coco_datasets)
    protocol = protocol_digest(args.config_file, args.opts)
    check_one_fingerprint(
        results_dir, fingerprint(protocol, base.device), backbone_known=not args.pretrain
    )
    logs = os.path.join(args.output, "logs")
    pretraining = Pretraining(args, coco_options) if args.pretrain else None
    backbone = pretraining.finished() if pretraining else None

    def wanted_of(backbone_digest):
        recorded = protocol + (f"{BACKBONE_TAG}{backbone_digest[:16]}" if backbone_digest else "")
        return fingerprint(recorded, base.device)

    pending = pretraining is not None and backbone is None
    finished = (
        set() if pending else set(load_results(results_dir, wanted_of(backbone and backbone[1]))[0])
    )

    print(f"[rank] timing a warm-up: {args.warmup_iters} iterations of {args.baseline}", flush=True)
    warm_opts = [*args.opts, *Run(Row(args.baseline), (), 0).opts(base, "unused")]
    folder = os.path.join(args.output, "warmup")
    timing = warm_up(
        args.config_file, warm_opts, folder, coco_options, args.warmup_iters,
        os.path.join(logs, "warmup.log"),
    )  # fmt: skip
    per_run = timing.estimate(schedule(base)[0])
    fixed, estimate = 0.0, {}
    if pretraining and pending:
        pretrain_timing = warm_up(
            args.pretrain, [*pretraining.opts, *base.override(base.SEED_KEY, 0)], folder,
            coco_options, args.warmup_iters, os.path.join(logs, "warmup.log"),
        )  # fmt: skip
        fixed = pretrain_timing.estimate(pretraining.iterations)
        estimate["backbone"] = (
            f"pretraining {args.pretrain} with smooth L1 ({pretraining.iterations} iterations), "
            f"about {format_duration(fixed)}"
        )
    elif pretraining:
        estimate["backbone"] = f"{backbone[0]} (sha256 {backbone[1][:16]})"

    def runs_to_train(count):
        return sum(run.name not in finished for run in plan(rows, [], range(count)))

    seeds = args.seeds or DEFAULT_SEEDS
    if args.budget:
        left = args.budget * 3600 - (time.monotonic() - start)
        seeds = largest_seed_count(left, fixed, per_run, runs_to_train)
        if seeds is None:
            needed = fixed + per_run * runs_to_train(2)
            raise ValueError(
                f"--budget {args.budget:g} h does not fit 2 seeds of {len(rows)} losses: they "
                f"take about {format_duration(needed)} ({runs_to_train(2)} runs of about "
                f"{format_duration(per_run)}"
                + (f", pretraining about {format_duration(fixed)}" if fixed else "")
                + ")"
            )
    runs = plan(rows, [], range(seeds))
    total = fixed + per_run * runs_to_train(seeds)
    estimate["text"] = (
        f"about {format_duration(total)}: {runs_to_train(seeds)} runs of about "
        f"{format_duration(per_run)}"
        + (" plus the pretraining" if fixed else "")
        + f", from a warm-up of {timing.iterations} iterations in "
        f"{format_duration(timing.seconds)} ({timing.seconds_per_iteration:.2f} s per iteration)"
    )
    for line in describe_plan(args, base, runs, len(runs) - runs_to_train(seeds), estimate):
        print(f"[rank] {line}", flush=True)

    opts = list(args.opts)
    if pretraining:
        if pending:
            print(
                f"[rank] pretraining the shared backbone (log: {pretraining.log_file})", flush=True
            )
        backbone = pretraining.train()
        opts += base.override(base.WEIGHTS_KEY, backbone[0])
    wanted = wanted_of(backbone and backbone[1])
    check_one_fingerprint(results_dir, wanted)
    records = load_results(results_dir, wanted)[0]
    train_runs(args, base, runs, records, opts, coco_options, results_dir, wanted)

    meta = {
        "command": shlex.join(["python", "-m", "focal_eiou_d2.tools.rank", *argv]),
        "config_file": args.config_file,
        "opts": args.opts,
        "model": base.architecture,
        "train_datasets": list(base.train_datasets),
        "test_datasets": list(base.test_datasets),
        "schedule": "{} iterations of {} images per run".format(*schedule(base)),
        "seeds": list(range(seeds)),
        "seeds_text": f"0-{seeds - 1}",
        "backbone": backbone and {"file": backbone[0], "sha256": backbone[1]},
        "fingerprint": wanted,
    }
    report = build_report(runs, records, args.baseline, base, meta)
    write_report(report, runs, records, args.output)
    print(f"[rank] report: {os.path.join(args.output, 'report.md')}", flush=True)


def train_runs(args, base, runs, records, opts, coco_options, results_dir, wanted):
    """Trains the runs without a result file, one process each, with a progress line after each,
    and adds their records to ``records``.

    Args:
        args (argparse.Namespace): the parsed command line.
        base (YamlRunConfig or LazyRunConfig): the config, loaded with ``args.opts``.
        runs (list[Run]): the planned runs.
        records (dict[str, dict]): the finished runs' records by run name; completed here.
        opts (list[str]): the runs' overrides (the shared backbone's included).
        coco_options (list[str]): ``--coco-dataset`` options of the training processes.
        results_dir (str): where the result files go.
        wanted (dict): the fingerprint they record.
    """
    started, durations = time.monotonic(), []
    for run in runs:
        if run.name in records:
            print(f"[rank] {run.name}: finished earlier, skipped", flush=True)
    for run in runs:
        if run.name in records:
            continue
        run_dir = os.path.join(args.output, "runs", run.name)
        log_file = os.path.join(args.output, "logs", f"{run.name}.log")
        print(f"[rank] {run.name}: training (log: {log_file})", flush=True)
        run_start = time.monotonic()
        saved = quickstart(
            args.config_file, [*opts, *run.opts(base, run_dir)], run_dir, coco_options, log_file
        )
        durations.append(time.monotonic() - run_start)
        records[run.name] = result_record(run, saved, wanted)
        save_result(results_dir, run.name, records[run.name])
        left = sum(r.name not in records for r in runs)
        typical = sum(durations) / len(durations)
        print(
            f"[rank] {run.name}: AP {saved['bbox']['AP']:.2f} in "
            f"{format_duration(durations[-1])}",
            flush=True,
        )
        done = len(runs) - left
        elapsed = time.monotonic() - started
        print(f"[rank] {progress_line(done, len(runs), elapsed, left * typical)}", flush=True)


def main(argv=None):
    """Runs the ranking; a user error ends it with one line (see ``run_command``)."""
    run_command("rank", rank, argv)


if __name__ == "__main__":
    main()
