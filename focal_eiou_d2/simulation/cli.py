"""Command line of the simulation: ``python -m focal_eiou_d2.simulation COMMAND ...``.

The flags of the run options are built from :class:`.config.SimulationConfig`'s fields (flag,
help text and default); argparse's own defaults are None, so only the flags given reach the
config, which fills in the rest and validates everything before any work.
"""

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path
from typing import Optional, Sequence

import torch

from . import plots
from .config import DEFAULT_READING, READINGS, SimulationConfig
from .experiment import load_results, run_experiment, save_results, summary_table
from .focal_l1_curves import BETAS, X_MAX, focal_l1_curves
from .setups import SETUPS
from .trajectory import ANCHOR, TARGET, TRAJECTORY_LOSSES, run_trajectories

OUTPUT_ROOT = Path("output/simulation")
LOOP_OPTIONS = ("update", "iterations", "base_lr", "milestones", "lr_decay", "min_size")
"""The options of Algorithm 1's loop, which ``trajectory`` takes too (with --reading)."""

DESCRIPTION = """\
Box-regression simulation of Zhang et al. (Sec. 5.1, Algorithm 1): every anchor is moved onto
its target by gradient descent on (x, y, w, h), all pairs at once, with the losses of
focal_eiou_d2.layers. Options and readings: run --help.
"""


def readings_help() -> str:
    """What each reading sets, per setup (the epilog of --help)."""
    lines = [f"readings (--reading; default {DEFAULT_READING}); each option they set can be given:"]
    for name, reading in READINGS.items():
        lines.append(f"  {name}: {reading.description}")
        for setup in SETUPS:
            lines.append(
                f"    {setup}: --target-area {reading.target_area:g} --points "
                f"{reading.points(setup)} --num-points {reading.num_points(setup)} "
                f"--update {reading.update}"
            )
    lines += ["", "example:", "  python -m focal_eiou_d2.simulation run --setup setup2"]
    return "\n".join(lines)


def add_config_options(parser: argparse.ArgumentParser, names: Sequence[str], title: str) -> None:
    """Add the flags of the named :class:`SimulationConfig` fields, with the config's defaults.

    Args:
        parser (ArgumentParser): the parser to extend.
        names (Sequence[str]): field names; each that has a help text becomes its field's
            flag, parsed into ``dest`` = the field name with default None (``loss_params`` has
            none: ``run`` parses its ``--param`` flags itself).
        title (str): title of the argument group.
    """
    group = parser.add_argument_group(title)
    for option in fields(SimulationConfig):
        if option.name not in names or "help" not in option.metadata:
            continue
        if option.default is None:
            default = "set by --reading"
        elif isinstance(option.default, tuple):
            default = " ".join(str(value) for value in option.default)
        else:
            default = str(option.default)
        flag = option.metadata["flag"]
        kwargs = {"metavar": flag.lstrip("-").upper().replace("-", "_")}
        kwargs.update(option.metadata["argparse"])
        group.add_argument(
            flag,
            dest=option.name,
            default=None,
            help=f"{option.metadata['help']} (default: {default})",
            **kwargs,
        )


def config_from_args(args: argparse.Namespace, **given) -> SimulationConfig:
    """The validated config of the flags that were given (and of ``given``)."""
    for option in fields(SimulationConfig):
        value = getattr(args, option.name, None)
        if value is not None:
            given.setdefault(option.name, value)
    return SimulationConfig(**given)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with its four subcommands."""
    parser = argparse.ArgumentParser(
        prog="python -m focal_eiou_d2.simulation",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_run(commands)
    _add_trajectory(commands)
    _add_focal_l1(commands)
    _add_plot(commands)
    return parser


def _add_run(commands) -> None:
    run = commands.add_parser(
        "run",
        help="simulate one setup under several losses",
        description="Simulate one setup under several losses; write results.json, "
        "summary.md and the figures into --output.",
        epilog=readings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    names = [option.name for option in fields(SimulationConfig)]
    add_config_options(run, [n for n in names if n not in LOOP_OPTIONS], "setup and losses")
    add_config_options(run, LOOP_OPTIONS, "regression (Algorithm 1)")
    run.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="LOSS.NAME=VALUE",
        help="a library hyper-parameter of one of --losses, e.g. focal_eiou.gamma=0.25, "
        "smooth_l1.beta=1 or focal_eiou.detach_weight=false (repeatable)",
    )
    run.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's)")
    run.add_argument(
        "--output", type=Path, help=f"output folder (default: {OUTPUT_ROOT}/READING/SETUP)"
    )
    run.add_argument("--no-figures", action="store_true", help="write results.json only")
    run.add_argument(
        "--no-illustrations", action="store_true", help="skip trajectory.png and focal_l1.png"
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.set_defaults(handler=cmd_run)


def _add_trajectory(commands) -> None:
    traj = commands.add_parser(
        "trajectory",
        help="Fig. 1: one anchor regressed onto one target",
        description="Regress one anchor onto one target under each loss (float64) and draw "
        "the box at chosen iterations; writes trajectory.json and trajectory.png.",
    )
    traj.add_argument(
        "--losses",
        nargs="+",
        default=list(TRAJECTORY_LOSSES),
        metavar="LOSS",
        help=f"(default: {' '.join(TRAJECTORY_LOSSES)})",
    )
    for flag, box in (("--anchor", ANCHOR), ("--target", TARGET)):
        traj.add_argument(
            flag,
            type=float,
            nargs=4,
            default=list(box),
            metavar="XYWH",
            help=f"(default: {' '.join(map(str, box))})",
        )
    add_config_options(traj, ("reading",) + LOOP_OPTIONS, "regression (Algorithm 1)")
    traj.add_argument(
        "--output", type=Path, default=OUTPUT_ROOT / "trajectory", help="(default: %(default)s)"
    )
    traj.set_defaults(handler=cmd_trajectory)


def _add_focal_l1(commands) -> None:
    focal = commands.add_parser(
        "focal-l1",
        help="Figs. 4/5: FocalL1 loss and gradient curves",
        description="FocalL1 loss and autograd gradient from the library for several beta, "
        "checked against Eqs. 8-9; writes focal_l1.json and focal_l1.png.",
    )
    focal.add_argument(
        "--betas",
        type=float,
        nargs="+",
        default=list(BETAS),
        help=f"(default: {' '.join(f'{beta:.4f}' for beta in BETAS)})",
    )
    focal.add_argument("--x-max", type=float, default=X_MAX, help="(default: %(default)s)")
    focal.add_argument(
        "--output", type=Path, default=OUTPUT_ROOT / "focal_l1", help="(default: %(default)s)"
    )
    focal.set_defaults(handler=cmd_focal_l1)


def _add_plot(commands) -> None:
    plot = commands.add_parser(
        "plot",
        help="redraw the figures of a results.json",
        description="Redraw error_curves.png, iou_boxplots.png and summary.md from a results.json.",
    )
    plot.add_argument("results", type=Path, help="path to results.json")
    plot.add_argument("--output", type=Path, help="folder (default: that of results.json)")
    plot.set_defaults(handler=cmd_plot)


def parse_loss_params(items: Sequence[str]) -> dict:
    """Turn ``LOSS.NAME=VALUE`` strings into {loss: {name: value}} (numbers or true/false)."""
    params: dict = {}
    for item in items:
        key, sep, raw = item.partition("=")
        loss, dot, name = key.partition(".")
        value = raw.strip().lower()
        if value in ("true", "false"):
            value = value == "true"
        else:
            try:
                value = float(raw)
            except ValueError:
                value = None
        if not (sep and loss and dot and name) or value is None:
            raise ValueError(
                f"--param expects LOSS.NAME=VALUE with a number or true/false, got {item!r}"
            )
        params.setdefault(loss, {})[name] = value
    return params


def prepare_output(path: Path) -> Path:
    """Create the output folder before any work is done.

    Raises:
        ValueError: if ``path`` is a file or the folder cannot be created.
    """
    if path.exists() and not path.is_dir():
        raise ValueError(f"--output {path} is a file; give a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"--output {path}: cannot create the folder ({error})") from error
    return path


def cmd_run(args: argparse.Namespace) -> int:
    """Run a setup, save results.json and summary.md, draw the figures."""
    config = config_from_args(args, loss_params=parse_loss_params(args.param))
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    output = prepare_output(args.output or OUTPUT_ROOT / config.reading / config.setup)
    if args.threads:
        torch.set_num_threads(args.threads)
    results = run_experiment(config, progress=not args.no_progress)
    save_results(results, output)
    write_summary(results, output)
    if not args.no_figures:
        draw_results(results, output)
        if not args.no_illustrations:
            draw_illustrations(config, output)
    print(f"wrote {output}")
    return 0


def draw_results(results: dict, output: Path) -> None:
    """Draw error_curves.png and iou_boxplots.png."""
    plots.plot_error_curves(results, output / plots.ERROR_CURVES)
    plots.plot_iou_boxplots(results, output / plots.IOU_BOXPLOTS)


def draw_illustrations(config: SimulationConfig, output: Path) -> None:
    """Draw trajectory.png (Fig. 1) and focal_l1.png (Figs. 4/5) with the run's loop options."""
    trajectories = run_trajectories(config)
    _write_json(trajectories, output / "trajectory.json")
    plots.plot_trajectories(trajectories, output / plots.TRAJECTORY)
    curves = focal_l1_curves()
    _write_json(curves, output / "focal_l1.json")
    plots.plot_focal_l1(curves, output / plots.FOCAL_L1)


def cmd_trajectory(args: argparse.Namespace) -> int:
    """Fig. 1: regress one anchor under each loss; write JSON and PNG."""
    config = config_from_args(args, losses=tuple(args.losses))
    output = prepare_output(args.output)
    trajectories = run_trajectories(config, config.losses, args.anchor, args.target)
    _write_json(trajectories, output / "trajectory.json")
    plots.plot_trajectories(trajectories, output / plots.TRAJECTORY)
    for name, run in trajectories["losses"].items():
        print(
            f"{name}: IoU {run['iou'][0]:.3f} -> {run['iou'][-1]:.4f}, error {run['error'][-1]:.4g}"
        )
    print(f"wrote {output}")
    return 0


def cmd_focal_l1(args: argparse.Namespace) -> int:
    """Figs. 4/5: FocalL1 curves from the library, checked against Eqs. 8-9."""
    output = prepare_output(args.output)
    curves = focal_l1_curves(args.betas, args.x_max)
    _write_json(curves, output / "focal_l1.json")
    plots.plot_focal_l1(curves, output / plots.FOCAL_L1)
    for curve in curves["curves"].values():
        print(
            f"beta={curve['beta']:.4f}: max grad {curve['max_grad']:.4f} at x="
            f"{curve['argmax_grad']:.3f}; |library - Eq. 8| <= {curve['max_abs_grad_error']:.2e}, "
            f"|library - Eq. 9| <= {curve['max_abs_loss_error']:.2e}"
        )
    print(f"wrote {output}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    """Redraw the figures and summary.md of a results.json."""
    if not args.results.is_file():
        raise ValueError(f"{args.results} is not a file; give the results.json of a run")
    results = load_results(args.results)
    output = prepare_output(args.output or args.results.parent)
    draw_results(results, output)
    write_summary(results, output)
    print(f"wrote {output}")
    return 0


def write_summary(results: dict, output: Path) -> None:
    """Print the summary table and write it to summary.md."""
    table = summary_table(results)
    (output / "summary.md").write_text(table + "\n")
    print(table)


def _write_json(data: dict, path: Path) -> None:
    path.write_text(json.dumps(data, indent=1))


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Parse the arguments and run the subcommand; a bad option is an error (exit code 2)."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
