"""Command line of the simulation lab: ``python -m focal_eiou_d2.simulation COMMAND ...``."""

import argparse
import json
import sys
from pathlib import Path
from typing import Optional, Sequence

import torch

from focal_eiou_d2.layers import BOX_LOSSES

from . import plots
from .config import (
    DEFAULT_LOSSES,
    DTYPES,
    POINT_REGIONS,
    SCALES,
    UPDATE_RULES,
    SimulationConfig,
)
from .experiment import load_results, run_experiment, save_results, schedule_of, summary_table
from .focal_l1_curves import BETAS, focal_l1_curves
from .schedule import StepSchedule
from .setups import SETUPS
from .trajectory import ANCHOR, TARGET, TRAJECTORY_LOSSES, run_trajectories

DESCRIPTION = """\
Box-regression simulation of Zhang et al. (Sec. 5.1, Algorithm 1): every anchor is moved onto
its target by B <- B - lr * dL/dB on (x, y, w, h), all pairs at once, with the losses of
focal_eiou_d2.layers.

subcommands:
  run         one setup, several losses: results.json, summary.md and all figures
  trajectory  Fig. 1: one anchor regressed onto one target (GIoU, CIoU, EIoU)
  focal-l1    Figs. 4/5: FocalL1 loss and autograd gradient for several beta
  plot        redraw the figures of an existing results.json
"""

EPILOG = """\
defaults (the paper's ambiguities; none tuned to make a claim hold):
  --scale unit       targets of area 1, anchors of 0.5..2 x that area (the DIoU convention the
                     paper follows); 'literal': targets of area 100, anchors 50..200, centre
                     regions unchanged
  --points           'square' (side 2.5 around (10, 10), stated for setup 2 and the paper's only
                     stated region, so also used for setup 1) for setup1/setup2; 'disc' (radius
                     3, the DIoU authors') for the diou setup
  --update descent   Algorithm 1 as written; 'diou' multiplies the step by (2 - IoU)
  T = 200, lr 0.1 until 0.8T, 0.01 until 0.9T, 0.001 after; float32; w, h clamped to >= 1e-6

example:
  python -m focal_eiou_d2.simulation run --setup setup1 --output output/simulation/setup1
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with its four subcommands."""
    parser = argparse.ArgumentParser(
        prog="python -m focal_eiou_d2.simulation",
        description=DESCRIPTION,
        epilog=EPILOG,
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
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "--setup",
        choices=sorted(SETUPS),
        default="setup1",
        help="; ".join(f"{name}: {spec.description}" for name, spec in SETUPS.items())
        + " (default: setup1)",
    )
    run.add_argument(
        "--losses",
        nargs="+",
        choices=sorted(BOX_LOSSES),
        default=list(DEFAULT_LOSSES),
        metavar="LOSS",
        help=f"losses to run (default: {' '.join(DEFAULT_LOSSES)}); "
        f"choices: {', '.join(sorted(BOX_LOSSES))}",
    )
    run.add_argument("--scale", choices=SCALES, default="unit", help="box scale (default: unit)")
    run.add_argument(
        "--points",
        choices=POINT_REGIONS,
        default=None,
        help="region of the centre points (default: square for setup1/setup2, disc for diou)",
    )
    run.add_argument("--num-points", type=int, help="override the setup's number of points")
    _add_regression_args(run)
    run.add_argument("--seed", type=int, default=0, help="seed of the centre points (0)")
    run.add_argument("--dtype", choices=sorted(DTYPES), default="float32", help="(float32)")
    run.add_argument("--device", default="cpu", help="cpu | cuda (default: cpu)")
    run.add_argument(
        "--quantile-every", type=int, default=10, help="store IoU quantiles every N iterations"
    )
    run.add_argument("--gamma", type=float, help="focal_eiou's gamma (library default 0.5)")
    run.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="LOSS.NAME=VALUE",
        help="a library hyper-parameter, e.g. smooth_l1.beta=1 or focal_eiou.detach_weight=false",
    )
    run.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's)")
    run.add_argument("--output", type=Path, help="output folder (default: output/simulation/SETUP)")
    run.add_argument("--no-figures", action="store_true", help="write results.json only")
    run.add_argument(
        "--no-illustrations",
        action="store_true",
        help="skip trajectory.png and focal_l1.png",
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.set_defaults(handler=cmd_run)


def _add_regression_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("regression (Algorithm 1)")
    group.add_argument("--iterations", type=int, default=200, help="T (default: 200)")
    group.add_argument("--lr", type=float, default=0.1, help="base learning rate (0.1)")
    group.add_argument(
        "--milestones",
        type=float,
        nargs="*",
        default=[0.8, 0.9],
        help="fractions of T where lr is multiplied by --lr-decay (0.8 0.9)",
    )
    group.add_argument("--lr-decay", type=float, default=0.1, help="(0.1)")
    group.add_argument(
        "--update", choices=UPDATE_RULES, default="descent", help="update rule (descent)"
    )
    group.add_argument("--min-size", type=float, default=1e-6, help="clamp of w, h (1e-6)")


def _add_trajectory(commands) -> None:
    traj = commands.add_parser(
        "trajectory",
        help="Fig. 1: one anchor regressed onto one target",
        description="Regress one anchor onto one target under each loss (float64) and draw "
        "the box at chosen iterations; writes trajectory.json and trajectory.png.",
    )
    traj.add_argument(
        "--losses", nargs="+", choices=sorted(BOX_LOSSES), default=list(TRAJECTORY_LOSSES)
    )
    traj.add_argument("--anchor", type=float, nargs=4, default=list(ANCHOR), metavar="XYWH")
    traj.add_argument("--target", type=float, nargs=4, default=list(TARGET), metavar="XYWH")
    _add_regression_args(traj)
    traj.add_argument("--output", type=Path, default=Path("output/simulation/trajectory"))
    traj.set_defaults(handler=cmd_trajectory)


def _add_focal_l1(commands) -> None:
    focal = commands.add_parser(
        "focal-l1",
        help="Figs. 4/5: FocalL1 loss and gradient curves",
        description="FocalL1 loss and autograd gradient from the library for several beta, "
        "checked against Eqs. 8-9; writes focal_l1.json and focal_l1.png.",
    )
    focal.add_argument("--betas", type=float, nargs="+", default=list(BETAS))
    focal.add_argument("--x-max", type=float, default=2.0)
    focal.add_argument("--output", type=Path, default=Path("output/simulation/focal_l1"))
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


def parse_loss_params(pairs: Sequence[str], gamma: Optional[float]) -> dict:
    """Turn ``LOSS.NAME=VALUE`` strings (and --gamma) into {loss: {name: value}}."""
    params: dict = {}
    for item in pairs:
        key, sep, raw = item.partition("=")
        loss, dot, name = key.partition(".")
        if not sep or not dot or not name:
            raise ValueError(f"--param expects LOSS.NAME=VALUE, got {item!r}")
        params.setdefault(loss, {})[name] = _parse_value(raw)
    if gamma is not None:
        params.setdefault("focal_eiou", {})["gamma"] = gamma
    return params


def _parse_value(raw: str):
    lowered = raw.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    return float(raw)


def schedule_from_args(args: argparse.Namespace) -> StepSchedule:
    """The learning-rate schedule of the regression arguments."""
    return StepSchedule(args.iterations, args.lr, tuple(args.milestones), args.lr_decay)


def cmd_run(args: argparse.Namespace) -> int:
    """Run a setup, save results.json and summary.md, draw the figures."""
    if args.threads:
        torch.set_num_threads(args.threads)
    config = SimulationConfig(
        setup=args.setup,
        losses=tuple(args.losses),
        scale=args.scale,
        points=args.points,
        num_points=args.num_points,
        update=args.update,
        iterations=args.iterations,
        base_lr=args.lr,
        milestones=tuple(args.milestones),
        lr_decay=args.lr_decay,
        min_size=args.min_size,
        seed=args.seed,
        dtype=args.dtype,
        device=args.device,
        quantile_every=args.quantile_every,
        loss_params=parse_loss_params(args.param, args.gamma),
    )
    output = args.output or Path("output/simulation") / args.setup
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
    """Draw trajectory.png (Fig. 1) and focal_l1.png (Figs. 4/5) with the run's rule and T."""
    trajectories = run_trajectories(
        schedule=schedule_of(config),
        update=config.update,
        min_size=config.min_size,
        loss_params=config.loss_params,
    )
    _write_json(trajectories, output / "trajectory.json")
    plots.plot_trajectories(trajectories, output / plots.TRAJECTORY)
    curves = focal_l1_curves()
    _write_json(curves, output / "focal_l1.json")
    plots.plot_focal_l1(curves, output / plots.FOCAL_L1)


def cmd_trajectory(args: argparse.Namespace) -> int:
    """Fig. 1: regress one anchor under each loss; write JSON and PNG."""
    trajectories = run_trajectories(
        args.losses, args.anchor, args.target, schedule_from_args(args), args.update, args.min_size
    )
    _write_json(trajectories, args.output / "trajectory.json")
    plots.plot_trajectories(trajectories, args.output / plots.TRAJECTORY)
    for name, run in trajectories["losses"].items():
        print(
            f"{name}: IoU {run['iou'][0]:.3f} -> {run['iou'][-1]:.4f}, error {run['error'][-1]:.4g}"
        )
    print(f"wrote {args.output}")
    return 0


def cmd_focal_l1(args: argparse.Namespace) -> int:
    """Figs. 4/5: FocalL1 curves from the library, checked against Eqs. 8-9."""
    curves = focal_l1_curves(args.betas, args.x_max)
    _write_json(curves, args.output / "focal_l1.json")
    plots.plot_focal_l1(curves, args.output / plots.FOCAL_L1)
    for curve in curves["curves"].values():
        print(
            f"beta={curve['beta']:.4f}: max grad {curve['max_grad']:.4f} at x="
            f"{curve['argmax_grad']:.3f}; |library - Eq. 8| <= {curve['max_abs_grad_error']:.2e}, "
            f"|library - Eq. 9| <= {curve['max_abs_loss_error']:.2e}"
        )
    print(f"wrote {args.output}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    """Redraw the figures and summary.md of a results.json."""
    results = load_results(args.results)
    output = args.output or args.results.parent
    draw_results(results, output)
    write_summary(results, output)
    print(f"wrote {output}")
    return 0


def write_summary(results: dict, output: Path) -> None:
    """Print the summary table and write it to summary.md."""
    table = summary_table(results)
    output.mkdir(parents=True, exist_ok=True)
    (output / "summary.md").write_text(table + "\n")
    print(table)


def _write_json(data: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Parse the arguments and run the subcommand."""
    args = build_parser().parse_args(argv)
    if getattr(args, "device", "cpu").startswith("cuda") and not torch.cuda.is_available():
        print("error: --device cuda requested but CUDA is not available", file=sys.stderr)
        return 2
    try:
        return args.handler(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
