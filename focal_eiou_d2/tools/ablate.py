"""Train one config with several box losses, seeds and config values; tabulate the paper's way.

    python -m focal_eiou_d2.tools.ablate --config-file CONFIG \\
        --losses smooth_l1 eiou focal_eiou "smooth_l1[MODEL.RETINANET.BBOX_REG_LOSS_WEIGHT=0.25]" \\
        --seeds 0 1 2 3 4 --baseline smooth_l1 --output output/ablation [KEY VALUE ...]

YAML configs and LazyConfig ``.py`` files are accepted (overrides as ``KEY VALUE`` or
``key=value``); the loss is set on the box-loss node the model has (found in the model, not by
its name). Rows are losses, each optionally with its own overrides in brackets;
``--set KEY=V1,V2,...`` adds a grid over config values (e.g. Fig. 9's
``--set MODEL.FOCAL_EIOU.GAMMA=0.25,0.5,1.0,2.0``; a float key takes values written as floats),
run for every row (neither may set the seed or the loss: ``--seeds`` and ``--losses`` do; every
grid value's model is built before the first training, so that a value out of range stops the
runner at once). Every (row, grid value, seed) trains and evaluates in its own process through
the quickstart job, in ``<output>/runs/<run>``; the box-loss weight follows the paper
(Sec. 5.2: 1.0 for l_n-norm losses, 2.5 for IoU-based losses) unless a row sets it.
Config overrides go last, as ``train_net.py`` takes them, or after ``--opts``.

The command line is this module; the runs and their result files are
``focal_eiou_d2.tools.run_store``'s, the tables and plots ``focal_eiou_d2.tools.protocol_tables``'s.

With ``--pretrain CONFIG`` every run starts from one shared backbone: the runner trains CONFIG
once (in ``<output>/pretrain``), exports its ResNet (``backbone.pth``) and passes it as the
runs' initial weights; FPN and heads start from each run's seed. The backbone's sha256 is part of
the results' fingerprint. ``--pretrain FILE.pth`` starts the runs from such an exported backbone
as it is (one kept in git, so that every machine starts from the same bytes: a pretraining
trained again elsewhere need not reproduce them).

Each finished run leaves a small result file in ``<results-dir>/<run>.json`` (default
``<output>/results``): its metrics and a fingerprint (training code, protocol, torch version,
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
``--finished-only`` tabulates without training (into another ``--output``, also while an
ablation trains into the same results folder), on any machine: without the pretraining's folder
(a fresh clone) it takes the backbone digest from the result files, and the fingerprint too
where they have another machine's or code's (one, never mixed).
"""

import argparse
import os
import sys

from focal_eiou_d2 import ignore_torch_jit_deprecation

ignore_torch_jit_deprecation()  # raised by Detectron2 0.6's first import under recent PyTorch

from focal_eiou_d2.data import add_coco_dataset_argument  # noqa: E402
from focal_eiou_d2.engine import OutputDirError, load_run_config  # noqa: E402
from focal_eiou_d2.engine.run_dir import lock_output_dir  # noqa: E402
from focal_eiou_d2.tools.cli import (  # noqa: E402
    add_opts_arguments,
    add_output_argument,
    parsed_opts,
    run_command,
)
from focal_eiou_d2.tools.protocol_tables import summarize, write_outputs  # noqa: E402
from focal_eiou_d2.tools.run_store import (  # noqa: E402
    BACKBONE_TAG,
    Row,
    check_one_fingerprint,
    check_plan,
    check_runs,
    coco_dataset_options,
    config_digests,
    load_results,
    parse_row,
    plan,
    pretrained_backbone,
    protocol_digest,
    recorded_backbone,
    runs_fingerprint,
    tabulated_fingerprint,
    train,
    train_unfinished,
)

DEFAULT_LOSSES = ("smooth_l1", "giou", "ciou", "eiou", "focal_eiou")


def parse_setting(text):
    """``KEY=V1,V2,...`` as (KEY, (V1, V2, ...)); a value given twice is refused."""
    key, _, values = text.partition("=")
    if not key or not values or "" in values.split(","):
        raise argparse.ArgumentTypeError(f"--set {text!r} is not KEY=V1,V2,...")
    values = tuple(values.split(","))
    repeated = sorted({value for value in values if values.count(value) > 1})
    if repeated:
        raise argparse.ArgumentTypeError(f"--set {text!r} repeats {', '.join(repeated)}")
    return key, values


def parse_args(argv=None):
    """Parses the command line and checks its values (see ``--help``)."""
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
    add_output_argument(
        parser, "output/ablation", "the runs, the pretraining and the tables (default: %(default)s)"
    )
    parser.add_argument(
        "--results-dir", help="where the small result files go (default: <output>/results)"
    )
    parser.add_argument(
        "--finished-only", action="store_true", help="tabulate the runs finished so far; train none"
    )
    add_coco_dataset_argument(parser)
    add_opts_arguments(parser, "SOLVER.MAX_ITER 900", trailing=True)
    args = parser.parse_args(argv)
    args.opts = parsed_opts(parser, args, [args.config_file])
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f"--seeds repeats a seed: {args.seeds}")
    if len(set(args.losses)) != len(args.losses):
        parser.error("--losses repeats a row")
    keys = [key for key, _ in args.settings]
    if len(set(keys)) != len(keys):
        parser.error(f"--set repeats a key: {', '.join(keys)}")
    if any(seed < 0 for seed in args.seeds):
        parser.error(f"--seeds must be >= 0, got {args.seeds}")
    args.baseline = args.baseline or args.losses[0]
    if args.baseline not in args.losses:
        parser.error(f"--baseline {args.baseline.text} is not among --losses")
    args.results_dir = args.results_dir or os.path.join(args.output, "results")
    return args


def ablate(argv):
    """The ablation without its error boundary: checks everything, trains what is missing (unless
    ``--finished-only``) and writes the tables.

    Raises:
        OutputDirError, DatasetError, FileNotFoundError, KeyError, ValueError, CommandError: see
            :func:`focal_eiou_d2.tools.cli.user_errors`.
    """
    args = parse_args(argv)
    base = load_run_config(args.config_file, args.opts, coco_datasets=args.coco_datasets)
    check_plan(base, args.losses, args.settings)
    runs = plan(args.losses, args.settings, args.seeds[:1])
    check_runs(args.config_file, args.opts, base, runs, build_models=not args.finished_only)
    lock_output_dir(args.output)
    if not args.finished_only:  # tabulating reads result files while other runs add some
        lock_output_dir(args.results_dir)
    coco_options = coco_dataset_options(args.coco_datasets)
    protocol, opts = protocol_digest(args.config_file, args.opts), list(args.opts)
    recorded_protocol = protocol  # with the backbone's digest, as the result files record it
    if not args.finished_only:  # before the pretraining, which takes a while
        check_one_fingerprint(
            args.results_dir,
            runs_fingerprint(protocol, base.device),
            backbone_known=not args.pretrain,
        )
    if args.pretrain:
        try:
            backbone, backbone_digest = pretrained_backbone(
                args.pretrain, args.output, coco_options, train_it=not args.finished_only
            )
            opts += base.override(base.WEIGHTS_KEY, backbone)
        except OutputDirError as error:
            if not args.finished_only:
                raise
            backbone_digest = recorded_backbone(args.results_dir, protocol, error)
        recorded_protocol += f"{BACKBONE_TAG}{backbone_digest[:16]}"
    wanted = runs_fingerprint(recorded_protocol, base.device)
    if args.finished_only:
        wanted = tabulated_fingerprint(args.results_dir, wanted)
    elif args.pretrain:
        check_one_fingerprint(args.results_dir, wanted)
    runs = plan(args.losses, args.settings, args.seeds)
    records, other = load_results(args.results_dir, wanted)

    def train_run(run):
        print(f"[ablate] {run.name}: training", flush=True)
        return train(run, args.config_file, opts, base, args.output, coco_options)

    trains = None if args.finished_only else train_run
    train_unfinished(
        runs,
        records,
        args.results_dir,
        wanted,
        config_digests(args.config_file, args.opts, base),
        trains,
        "ablate",
    )
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
    print(write_outputs(summary, args.settings, meta, args.output, args.baseline.label))


def main(argv=None):
    """Runs the ablation; a user error ends it with one line (see ``run_command``)."""
    run_command("ablate", ablate, argv)


if __name__ == "__main__":
    main()
