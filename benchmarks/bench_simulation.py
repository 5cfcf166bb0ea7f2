"""Benchmark of the simulation (not a test): time per loss and peak memory.

Part 1 times setup 1 (343,000 pairs, T = 200, the default reading) for the six IoU-family
losses and compares each with a bare loop of the library's forward + backward alone, so that the
overhead of the simulation (box conversion, update, metrics) is visible. Target: < 60 s in total
on 2 threads. Each loss is warmed up first (a 1-iteration run, reported in its own column), so
that first-call costs (allocations, lazy initialization) stay out of the timed run.

Part 2 runs the DIoU authors' setup (``--reading diou``, 1,715,000 pairs) for one loss in a fresh
process and prints its peak resident memory (ru_maxrss). Budget: 24 GB.

    .venv/bin/python benchmarks/bench_simulation.py
    .venv/bin/python benchmarks/bench_simulation.py --losses eiou giou --iterations 50 --no-memory
"""

import argparse
import os
import resource
import subprocess
import sys
import time
from dataclasses import replace

import torch

from focal_eiou_d2.layers import BOX_LOSSES, box_regression_loss
from focal_eiou_d2.simulation import IOU_FAMILY, SimulationConfig, pairs_of
from focal_eiou_d2.simulation.boxes import xywh_to_xyxy
from focal_eiou_d2.simulation.cli import add_config_options, config_from_args
from focal_eiou_d2.simulation.experiment import run_experiment

TIME_TARGET_S = 60.0
THREADS = 2  # the target's thread count
MEMORY_BUDGET_GB = 24.0
MEMORY_RUN = ("diou", "setup1", "eiou", 20)  # reading, setup, loss, iterations of part 2


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_config_options(
        parser, ("reading", "setup", "iterations", "dtype", "device"), "part 1 (and dtype, device)"
    )
    parser.add_argument(
        "--losses", nargs="+", default=list(IOU_FAMILY), help="(default: %(default)s)"
    )
    parser.add_argument("--threads", type=int, default=THREADS, help="(default: %(default)s)")
    parser.add_argument(
        "--bare-iterations",
        type=int,
        default=20,
        help="iterations of the bare library fwd+bwd loop per loss (0: skip the overhead check)",
    )
    reading, setup, loss, iterations = MEMORY_RUN
    parser.add_argument("--memory-reading", default=reading, help="(default: %(default)s)")
    parser.add_argument("--memory-setup", default=setup, help="(default: %(default)s)")
    parser.add_argument("--memory-loss", default=loss, help="(default: %(default)s)")
    parser.add_argument(
        "--memory-iterations",
        type=int,
        default=iterations,
        help="iterations of the memory run (the peak is reached in the first one; default: "
        "%(default)s)",
    )
    parser.add_argument("--no-timing", action="store_true", help="skip part 1")
    parser.add_argument("--no-memory", action="store_true", help="skip part 2")
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def bare_seconds_per_iteration(name: str, config: SimulationConfig, iterations: int) -> float:
    """Seconds per iteration of the library's fwd + bwd alone, on a prepared input leaf."""
    pairs = pairs_of(config)
    encode = xywh_to_xyxy if BOX_LOSSES[name].on_boxes else (lambda boxes: boxes)
    pred = encode(pairs.anchors).requires_grad_(True)
    target = encode(pairs.targets)

    def step() -> None:
        loss = box_regression_loss(name, pred, target, reduction="none")
        torch.autograd.grad(loss.sum(), pred)

    step()  # warm-up
    start = time.perf_counter()
    for _ in range(iterations):
        step()
    return (time.perf_counter() - start) / iterations


def time_losses(args: argparse.Namespace) -> None:
    """Part 1: the whole simulation per loss, and the bare fwd+bwd for comparison.

    Wall and CPU seconds are both printed: on a shared machine the CPU time (all threads) is the
    steadier measure of the work done, wall time the one the target is about.
    """
    total_wall = total_cpu = 0.0
    first = config_from_args(args, losses=tuple(args.losses))
    print(
        f"part 1: {first.reading} reading, {first.setup}, T={first.iterations}, {first.dtype}, "
        f"{args.threads} threads"
    )
    header = f"{'loss':<12}{'warm-up s':>11}{'wall s':>8}{'cpu s':>8}"
    print(header + f"{'ms/it':>8}{'bare ms/it':>12}{'overhead':>10}")
    for name in args.losses:
        config = replace(first, losses=(name,))
        start = time.perf_counter()
        run_experiment(replace(config, iterations=1), progress=False)
        warm_up = time.perf_counter() - start
        cpu_start = time.process_time()
        result = run_experiment(config, progress=False)["losses"][name]
        cpu = time.process_time() - cpu_start
        wall = result["wall_time_s"]
        total_wall, total_cpu = total_wall + wall, total_cpu + cpu
        per_iteration = wall / config.iterations
        row = f"{name:<12}{warm_up:>11.1f}{wall:>8.1f}{cpu:>8.1f}"
        row += f"{per_iteration * 1e3:>8.1f}"
        if args.bare_iterations:
            bare = bare_seconds_per_iteration(name, config, args.bare_iterations)
            row += f"{bare * 1e3:>12.1f}{per_iteration / bare - 1:>10.0%}"
        print(row, flush=True)
    verdict = "meets" if total_wall < TIME_TARGET_S else "misses"
    print(
        f"total {total_wall:.1f} s wall, {total_cpu:.1f} s CPU, without warm-up "
        f"({verdict} the {TIME_TARGET_S:.0f} s target); load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )


def measure_memory(args: argparse.Namespace) -> None:
    """Part 2, in this (fresh) process: run one loss on the big setup, print ru_maxrss."""
    config = config_from_args(
        args,
        reading=args.memory_reading,
        setup=args.memory_setup,
        losses=(args.memory_loss,),
        iterations=args.memory_iterations,
    )
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    start = time.perf_counter()
    results = run_experiment(config, progress=False)
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    pairs = results["setup"]["num_pairs"]
    verdict = "within" if peak < MEMORY_BUDGET_GB else "OVER"
    print(
        f"part 2: {config.reading} reading, {config.setup} ({pairs:,} pairs), {args.memory_loss}, "
        f"T={args.memory_iterations}: {elapsed:.1f} s; peak RSS {peak:.2f} GiB "
        f"(after imports {before:.2f} GiB; {verdict} the {MEMORY_BUDGET_GB:.0f} GB budget)"
    )


def memory_in_child(args: argparse.Namespace) -> None:
    """Run part 2 in a fresh interpreter so that part 1 does not raise the peak."""
    command = [sys.executable, __file__, "--memory-child", "--threads", str(args.threads)]
    for flag in ("--memory-reading", "--memory-setup", "--memory-loss", "--memory-iterations"):
        command += [flag, str(getattr(args, flag[2:].replace("-", "_")))]
    for flag, value in (("--dtype", args.dtype), ("--device", args.device)):
        command += [flag, value] if value is not None else []
    subprocess.run(command, check=True)


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.memory_child:
        measure_memory(args)
        return
    if not args.no_timing:
        time_losses(args)
    if not args.no_memory:
        memory_in_child(args)


if __name__ == "__main__":
    main()
