"""Which box loss for my data? Ranks box losses on one config and dataset with paired 95 %
confidence intervals.

    python -m focal_eiou_d2.tools.rank --config-file CONFIG \\
        --coco-dataset mine_train train.json images/ --coco-dataset mine_val val.json images/ \\
        --output output/rank [--losses LOSS ... | zoo] [--seeds N | --budget HOURS] \\
        [--baseline smooth_l1] [--pretrain CONFIG_OR_PTH] [--num-gpus N] \\
        DATASETS.TRAIN "('mine_train',)" DATASETS.TEST "('mine_val',)"

A front end over the ablation runner's run store (``focal_eiou_d2.tools.run_store``): every
(loss, seed) trains and evaluates in its own process through the quickstart job, with the
paper's box-loss weight, and runs of one seed start from the same weights and see the same
images (the protocol of docs/reproduction.md). Config overrides (trailing ``KEY VALUE``, or
``key=value`` for a LazyConfig, or after ``--opts``) apply to every training: the runs, the
warm-up and the pretraining. ``--num-gpus N`` trains each of them in N processes on this machine,
as ``train_net.py`` does (the quickstart job's ``--num-gpus``); the batch stays the config's, split
over the processes, and the result files record the process count (in their fingerprint).

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
from focal_eiou_d2.engine import OutputDirError, load_run_config  # noqa: E402
from focal_eiou_d2.engine.checkpoint import export_weights  # noqa: E402
from focal_eiou_d2.engine.run_dir import lock_output_dir  # noqa: E402
from focal_eiou_d2.layers import BOX_LOSSES  # noqa: E402
from focal_eiou_d2.tools.cli import (  # noqa: E402
    add_opts_arguments,
    add_output_argument,
    parsed_opts,
    run_command,
)
from focal_eiou_d2.tools.quickstart import add_num_gpus_argument, check_num_gpus  # noqa: E402
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
    config_digests,
    load_results,
    plan,
    pretrained_backbone,
    protocol_digest,
    runs_fingerprint,
    train,
    train_unfinished,
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
    add_num_gpus_argument(parser)
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
        WeightsError: it is not a Detectron2 checkpoint (``{"model": ...}``) with such entries.
    """
    if not os.path.isfile(weights):
        raise FileNotFoundError(f"--pretrain {weights}: no such weights file")
    target = os.path.join(output_dir, "backbone", "backbone.pth")
    os.makedirs(os.path.dirname(target), exist_ok=True)
    export_weights(weights, target, BACKBONE_PREFIX)
    return target


class Pretraining:
    """The shared backbone of ``--pretrain``: a config to train once with smooth L1, or the
    ResNet of a checkpoint.

    Attributes:
        backbone (tuple[str, str] or None): the backbone file and its sha256; None while the
            pretraining is due.
        due (bool): the pretraining has not finished.

    Args:
        args (argparse.Namespace): the parsed command line.
        coco_options (list[str]): ``--coco-dataset`` options of the training processes.
    """

    def __init__(self, args, coco_options):
        self.output, self.coco_options, self.num_gpus = args.output, coco_options, args.num_gpus
        self.source, self.opts, self.iterations = args.pretrain, [], None
        if args.pretrain.endswith(".pth"):
            self.source = backbone_of_weights(args.pretrain, args.output)
        else:
            config = load_run_config(args.pretrain, args.opts, coco_datasets=args.coco_datasets)
            check_num_gpus(config, args.num_gpus)
            self.opts = [*args.opts, *config.loss_overrides(PRETRAIN_LOSS)]
            self.iterations = schedule(config)[0]
        self.log_file = os.path.join(args.output, "logs", "pretrain.log")
        try:
            self.backbone = pretrained_backbone(self.source, self.output, coco_options, False)
        except OutputDirError:
            self.backbone = None
        self.due = self.backbone is None

    def describe(self):
        """The backbone in words, for the plan."""
        if self.due:
            return f"pretraining {self.source} with smooth L1, {self.iterations} iterations"
        return f"{self.backbone[0]} (sha256 {self.backbone[1][:16]})"

    def train(self):
        """Trains the pretraining if it is due, else checks that the finished one is of this
        config (a changed config is an error, as in any output folder).

        Returns:
            tuple[str, str]: the backbone file and its sha256.
        """
        if self.due:
            print(f"[rank] pretraining the shared backbone (log: {self.log_file})", flush=True)
        self.backbone = pretrained_backbone(
            self.source,
            self.output,
            self.coco_options,
            True,
            self.opts,
            self.log_file,
            self.num_gpus,
        )
        self.due = False
        return self.backbone


def price(args, base, pretraining, coco_options):
    """Times the warm-ups (the baseline's, and the pretraining's if it is due).

    Returns:
        tuple[float, float, Timing]: seconds of one run, seconds of the pretraining (0 if it is
        not due), the runs' warm-up.
    """
    logs = os.path.join(args.output, "logs", "warmup.log")
    folder = os.path.join(args.output, "warmup")
    warm_opts = [*args.opts, *Run(Row(args.baseline), (), 0).opts(base, "unused")]
    how = (folder, coco_options, args.warmup_iters, logs, args.num_gpus)
    timing = warm_up(args.config_file, warm_opts, *how)
    pretrain_seconds = 0.0
    if pretraining and pretraining.due:
        pretrain_seconds = warm_up(args.pretrain, pretraining.opts, *how).estimate(
            pretraining.iterations
        )
    return timing.estimate(schedule(base)[0]), pretrain_seconds, timing


def seed_count(args, left, fixed, per_run, runs_to_train):
    """``--seeds``, or the most seeds that fit ``--budget`` (``left`` seconds of it are left).

    Raises:
        ValueError: 2 seeds do not fit the budget (the message has the estimate).
    """
    if not args.budget:
        return args.seeds or DEFAULT_SEEDS
    seeds = largest_seed_count(left, fixed, per_run, runs_to_train)
    if seeds is None:
        pretraining = f", pretraining about {format_duration(fixed)}" if fixed else ""
        raise ValueError(
            f"--budget {args.budget:g} h does not fit 2 seeds of {len(args.losses)} losses: they "
            f"take about {format_duration(fixed + per_run * runs_to_train(2))} "
            f"({runs_to_train(2)} runs of about {format_duration(per_run)}{pretraining})"
        )
    return seeds


def describe_plan(args, base, seeds, to_train, backbone, times):
    """The plan's lines: runs, schedule, shared backbone, estimated time.

    Args:
        args (argparse.Namespace): the parsed command line.
        base (YamlRunConfig or LazyRunConfig): the config, loaded with ``args.opts``.
        seeds (int): the seed count.
        to_train (int): runs without a result.
        backbone (str or None): the shared backbone, in words.
        times (tuple[float, float, Timing]): what :func:`price` returned.
    """
    per_run, fixed, timing = times
    runs = len(args.losses) * seeds
    losses = ", ".join(
        f"{loss} (baseline)" if loss == args.baseline else loss for loss in args.losses
    )
    lines = [
        f"plan: {len(args.losses)} losses x {seeds} seeds = {runs} runs, {to_train} to train "
        f"({runs - to_train} finished earlier); losses {losses}; seeds 0-{seeds - 1}, paired"
        + (f" (the most that fit --budget {args.budget:g} h)" if args.budget else ""),
        f"schedule: {base.architecture}, {schedule_text(base, args.num_gpus)}; "
        f"trained on {', '.join(base.train_datasets)}, evaluated on "
        f"{', '.join(base.test_datasets)}",
    ]
    if backbone:
        lines.append(f"shared backbone: {backbone}")
    pretraining = f", pretraining about {format_duration(fixed)}" if fixed else ""
    lines.append(
        f"estimated time: about {format_duration(fixed + per_run * to_train)} ({to_train} runs "
        f"of about {format_duration(per_run)}{pretraining}; from a warm-up: "
        f"{timing.iterations} iterations in {format_duration(timing.seconds)}, "
        f"{timing.seconds_per_iteration:.2f} s per iteration)"
    )
    return lines


def schedule_text(base, num_gpus):
    """A run's schedule in words, e.g. ``600 iterations of 16 images per run (8 in each of 2
    processes)``."""
    iterations, batch = schedule(base)
    text = f"{iterations} iterations of {batch} images per run"
    return text + (
        f" ({batch // num_gpus} in each of {num_gpus} processes)" if num_gpus > 1 else ""
    )


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
    check_num_gpus(base, args.num_gpus)
    rows = [Row(loss) for loss in args.losses]
    check_plan(base, rows, [])
    check_runs(args.config_file, args.opts, base, plan(rows, [], [0]))
    results_dir = os.path.join(args.output, "results")
    lock_output_dir(args.output)
    lock_output_dir(results_dir)
    coco_options = coco_dataset_options(args.coco_datasets)
    plain = runs_fingerprint(
        protocol_digest(args.config_file, args.opts), base.device, args.num_gpus
    )
    check_one_fingerprint(results_dir, plain, backbone_known=not args.pretrain)
    pretraining = Pretraining(args, coco_options) if args.pretrain else None

    def wanted_of(backbone):
        tag = f"{BACKBONE_TAG}{backbone[1][:16]}" if backbone else ""
        return {**plain, "protocol": plain["protocol"] + tag}

    finished = set()
    if not (pretraining and pretraining.due):
        finished = set(
            load_results(results_dir, wanted_of(pretraining and pretraining.backbone))[0]
        )

    def runs_to_train(count):
        return sum(run.name not in finished for run in plan(rows, [], range(count)))

    times = price(args, base, pretraining, coco_options)
    left = (args.budget or 0) * 3600 - (time.monotonic() - start)
    seeds = seed_count(args, left, times[1], times[0], runs_to_train)
    backbone = pretraining and pretraining.describe()
    for line in describe_plan(args, base, seeds, runs_to_train(seeds), backbone, times):
        print(f"[rank] {line}", flush=True)

    opts = list(args.opts)
    if pretraining:
        opts += base.override(base.WEIGHTS_KEY, pretraining.train()[0])
    wanted = wanted_of(pretraining and pretraining.backbone)
    check_one_fingerprint(results_dir, wanted)
    records = load_results(results_dir, wanted)[0]
    runs = plan(rows, [], range(seeds))
    train_runs(args, base, runs, records, opts, coco_options, results_dir, wanted)

    meta = {
        "command": shlex.join(["python", "-m", "focal_eiou_d2.tools.rank", *argv]),
        "config_file": args.config_file,
        "opts": args.opts,
        "model": base.architecture,
        "train_datasets": list(base.train_datasets),
        "test_datasets": list(base.test_datasets),
        "schedule": schedule_text(base, args.num_gpus),
        "seeds": list(range(seeds)),
        "seeds_text": f"0-{seeds - 1}",
        "backbone": pretraining
        and dict(zip(("file", "sha256"), pretraining.backbone, strict=True)),
        "fingerprint": wanted,
    }
    report = build_report(runs, records, args.baseline, base, meta)
    write_report(report, runs, records, args.output)
    print(f"[rank] report: {os.path.join(args.output, 'report.md')}", flush=True)


def train_runs(args, base, runs, records, opts, coco_options, results_dir, wanted):
    """Trains the runs without a result file (the run store's loop), each in its own process(es)
    with its output in ``<output>/logs``, with a progress line after each, and adds their records
    to ``records``.

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

    def train_run(run):
        log_file = os.path.join(args.output, "logs", f"{run.name}.log")
        print(f"[rank] {run.name}: training (log: {log_file})", flush=True)
        run_start = time.monotonic()
        saved = train(
            run, args.config_file, opts, base, args.output, coco_options, log_file, args.num_gpus
        )
        durations.append(time.monotonic() - run_start)
        print(
            f"[rank] {run.name}: AP {saved['bbox']['AP']:.2f} in "
            f"{format_duration(durations[-1])}",
            flush=True,
        )
        left = sum(r.name not in records for r in runs) - 1  # this run's record comes next
        elapsed, typical = time.monotonic() - started, sum(durations) / len(durations)
        line = progress_line(len(runs) - left, len(runs), elapsed, left * typical)
        print(f"[rank] {line}", flush=True)
        return saved

    train_unfinished(
        runs,
        records,
        results_dir,
        wanted,
        config_digests(args.config_file, args.opts, base),
        train_run,
        "rank",
    )


def main(argv=None):
    """Runs the ranking; a user error ends it with one line (see ``run_command``)."""
    run_command("rank", rank, argv)


if __name__ == "__main__":
    main()
