"""Benchmark of the box-regression losses (not a test): forward + backward time and peak memory.

For each N, every implementation computes the per-pair loss of N random valid float32 box pairs,
sums it and takes the gradient with respect to the predictions. Ours, for each loss with a fused
kernel: the named function (``eiou_loss``, ...) as a user calls it (the fast path: the fused
kernel compiled by torch.compile), the same call through ``box_regression_loss``, and the named
function with the fast path off (the reference, eager autograd, "[off]"). Then torchvision's and
Detectron2's GIoU/DIoU/CIoU,
and two memory-bandwidth references that move the 13N floats a fused loss must touch at least
(read pred and target, 8N; write the loss and the gradient, 5N): a copy of 6.5N floats with
``copy_`` into a preallocated buffer, and with ``clone``, which allocates its output as a loss
must.

Time: median and minimum over rounds after warm-up; each round runs every implementation once,
so that load from other processes affects all of them alike. The ratios and targets use the
medians. Peak memory: on CPU, the highest total of live
tensor bytes allocated during one step, from the profiler's allocation events (inputs excluded,
outputs and autograd's saved tensors included); on CUDA, ``torch.cuda.max_memory_allocated``
above the bytes allocated before the step. Faults: the process's minor page faults per step
(median; thousands mean the step's outputs landed in memory freshly mapped by the operating
system).

Targets, checked in the same run and printed as PASS/FAIL: at N = 10^6 each named loss with a
fused kernel is at least 20x faster than torchvision's ``complete_box_iou_loss`` (ciou: 10x); at
N = 10^3 each is no slower than its own reference.

``--first-call`` measures instead what a process pays once: the first call of each loss and
dtype in a fresh process, with an empty inductor cache (cold, as in CI or a user's first run) and
again with the cache the cold run filled (warm, a user's later runs).

    .venv/bin/python benchmarks/bench_losses.py
    .venv/bin/python benchmarks/bench_losses.py --losses eiou focal_eiou --json out.json
    .venv/bin/python benchmarks/bench_losses.py --sizes 64 256 1024 --min-pairs 1 --no-others
    .venv/bin/python benchmarks/bench_losses.py --sizes 1024 4096 16384 --parallel-min-pairs 0
    .venv/bin/python benchmarks/bench_losses.py --first-call
"""

import argparse
import importlib
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Optional

os.environ.setdefault("KINETO_LOG_LEVEL", "6")  # the profiler's console chatter, not results

import torch  # noqa: E402
from detectron2.layers.losses import ciou_loss as d2_ciou_loss  # noqa: E402
from detectron2.layers.losses import diou_loss as d2_diou_loss  # noqa: E402
from fvcore.nn import giou_loss as d2_giou_loss  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402
from torchvision.ops import (  # noqa: E402
    complete_box_iou_loss,
    distance_box_iou_loss,
    generalized_box_iou_loss,
)

from focal_eiou_d2.layers import (  # noqa: E402
    BOX_LOSSES,
    FUSED_LOSSES,
    box_regression_loss,
    compile_error,
    compiled_kernel,
    fast_path,
    path_counts,
    set_fast_path,
)

BASELINE = "torchvision complete_box_iou_loss"
OTHERS = {
    "torchvision generalized_box_iou_loss": generalized_box_iou_loss,
    "torchvision distance_box_iou_loss": distance_box_iou_loss,
    BASELINE: complete_box_iou_loss,
    "detectron2 giou_loss (fvcore)": d2_giou_loss,
    "detectron2 diou_loss": d2_diou_loss,
    "detectron2 ciou_loss": d2_ciou_loss,
}
COPY, CLONE = "copy_ 6.5N floats (13N moved)", "clone 6.5N floats (13N moved)"
LARGE, SMALL = 10**6, 10**3
SPEED_UP_TARGETS = {"ciou": 10.0}
"""At N = LARGE: least speed-up of a named loss over BASELINE, where not DEFAULT_SPEED_UP."""
DEFAULT_SPEED_UP = 20.0
FIRST_CALL_PAIRS = 1000
DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass
class Result:
    """One implementation at one N."""

    name: str
    pairs: int
    path: str
    first_call_s: float
    ms: float  # median over the timed rounds
    min_ms: float  # fastest round: the least disturbed by other processes
    peak_mb: float
    faults: float  # minor page faults of the process per step (median over the timed rounds)
    speed_up: float = math.nan  # time of BASELINE / this time, at the same N


@dataclass
class Candidate:
    """An implementation: ``step()`` runs one forward + backward on prepared inputs."""

    name: str
    step: Callable[[], object]
    fast_path: Optional[bool] = None  # for ours: the fast path switch during the step

    def run(self) -> str:
        """One step; returns the path our library took ("compiled", "reference") or "-"."""
        if self.fast_path is None:
            self.step()
            return "-"
        set_fast_path(self.fast_path)
        before = path_counts()
        self.step()
        taken = [path for path, count in path_counts().items() if count > before.get(path, 0)]
        return "+".join(taken)


def named(name: str) -> str:
    """Row label of the named function of a loss, as a user calls it."""
    return f"ours {BOX_LOSSES[name].fn.__name__}"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", type=float, default=[SMALL, 1e5, LARGE])
    parser.add_argument("--repeats", type=int, default=10, help="timed rounds per N")
    parser.add_argument(
        "--losses", nargs="+", choices=list(FUSED_LOSSES), default=list(FUSED_LOSSES)
    )
    parser.add_argument("--no-others", action="store_true", help="only ours and the copies")
    parser.add_argument(
        "--devices",
        nargs="+",
        default=["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"],
        help="default: the CPU, and CUDA when available",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--min-pairs", type=int, help="override fast_path.MIN_PAIRS (e.g. 1, to time small N)"
    )
    parser.add_argument(
        "--parallel-min-pairs",
        type=int,
        help="override compiled_kernel.PARALLEL_MIN_PAIRS (0: always split among the threads)",
    )
    parser.add_argument(
        "--first-call",
        action="store_true",
        help="measure the first call per loss and dtype in fresh processes (compilation)",
    )
    parser.add_argument("--json", help="also write the results to this path")
    parser.add_argument("--first-call-child", nargs=3, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def machine(device: torch.device) -> dict:
    """CPU model and widest vector extension, threads, versions and, on CUDA, the GPU."""
    with open("/proc/cpuinfo") as cpuinfo:
        lines = cpuinfo.readlines()
    models = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    flags = next((line.split() for line in lines if line.startswith("flags")), [])
    info = {
        "cpu": models[0] if models else platform.processor(),
        "vectors": next((ext for ext in ("avx512f", "avx2", "sse4_2") if ext in flags), "-"),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "device": str(device),
        "load_average": os.getloadavg()[0],
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def random_boxes(
    pairs: int, device: torch.device, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """Valid XYXY pairs: targets with sides in [5, 300], predictions jittered around them
    (mostly overlapping), the predictions requiring grad."""
    generator = torch.Generator().manual_seed(0)
    centre = 500 * torch.rand(pairs, 2, generator=generator)
    size = 5 + 295 * torch.rand(pairs, 2, generator=generator)
    target = torch.cat([centre - size / 2, centre + size / 2], dim=-1)
    pred_centre = centre + 0.3 * size * torch.randn(pairs, 2, generator=generator)
    pred_size = size * torch.exp(0.3 * torch.randn(pairs, 2, generator=generator))
    pred = torch.cat([pred_centre - pred_size / 2, pred_centre + pred_size / 2], dim=-1)
    return pred.to(device, dtype).requires_grad_(True), target.to(device, dtype)


def candidates(args: argparse.Namespace, pairs: int, device: torch.device) -> list[Candidate]:
    """Every implementation to time at this N, with its inputs."""
    pred, target = random_boxes(pairs, device)

    def loss_step(loss_fn):
        return lambda: torch.autograd.grad(loss_fn(pred, target).sum(), pred)

    found = []
    for name in args.losses:
        function = loss_step(BOX_LOSSES[name].fn)
        dispatch = loss_step(lambda a, b, name=name: box_regression_loss(name, a, b))
        found.append(Candidate(named(name), function, fast_path=True))
        found.append(Candidate(f"ours box_regression_loss {name}", dispatch, fast_path=True))
        found.append(Candidate(f"{named(name)} [off]", function, fast_path=False))
    if not args.no_others:
        found += [Candidate(name, loss_step(fn)) for name, fn in OTHERS.items()]
    source = torch.empty(math.ceil(6.5 * pairs), device=device)
    destination = torch.empty_like(source)
    found.append(Candidate(COPY, lambda: destination.copy_(source)))
    found.append(Candidate(CLONE, source.clone))
    return found


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(candidate: Candidate, device: torch.device) -> tuple[float, str, int]:
    """Seconds of one step, the path it took and the page faults it caused.

    Page faults: a fresh allocation that glibc maps from the operating system anew (not reusing
    memory freed earlier) faults once per 4 KiB page it touches, which can make a step several
    times slower; the count shows when that happened.
    """
    synchronize(device)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    path = candidate.run()
    synchronize(device)
    seconds = time.perf_counter() - start
    return seconds, path, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults


def peak_bytes(candidate: Candidate, device: torch.device) -> int:
    """Peak tensor bytes allocated during one step, above those live before it."""
    if device.type == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        candidate.run()
        synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
        candidate.run()
    events = [e for e in profiler.profiler.kineto_results.events() if e.name() == "[memory]"]
    live = peak = 0
    for event in sorted(events, key=lambda event: event.start_ns()):
        live += event.nbytes()
        peak = max(peak, live)
    return peak


def measure(args: argparse.Namespace, pairs: int, device: torch.device) -> list[Result]:
    """Every candidate at one N: first call, median of the timed rounds, peak memory."""
    found = candidates(args, pairs, device)
    first = {c.name: timed(c, device) for c in found}  # compiles the fast path if needed
    for candidate in found:
        timed(candidate, device)
    rounds = {c.name: [] for c in found}
    for _ in range(args.repeats):
        for candidate in found:
            rounds[candidate.name].append(timed(candidate, device))
    results = [
        Result(
            name=c.name,
            pairs=pairs,
            path=first[c.name][1],
            first_call_s=first[c.name][0],
            ms=1e3 * statistics.median(seconds for seconds, _, _ in rounds[c.name]),
            min_ms=1e3 * min(seconds for seconds, _, _ in rounds[c.name]),
            peak_mb=peak_bytes(c, device) / 2**20,
            faults=statistics.median(faults for _, _, faults in rounds[c.name]),
        )
        for c in found
    ]
    baseline = next((r.ms for r in results if r.name == BASELINE), math.nan)
    for result in results:
        result.speed_up = baseline / result.ms
    return results


def print_table(results: list[Result]) -> None:
    header = f"{'implementation':<40}{'N':>9}{'path':>10}{'1st call s':>11}{'ms':>10}{'min ms':>10}"
    print(header + f"{'x tv CIoU':>10}{'peak MB':>10}{'B/pair':>8}{'faults':>8}")
    for r in results:
        row = f"{r.name:<40}{r.pairs:>9}{r.path:>10}{r.first_call_s:>11.2f}{r.ms:>10.3f}"
        row += f"{r.min_ms:>10.3f}"
        row += f"{r.speed_up:>10.2f}{r.peak_mb:>10.2f}{r.peak_mb * 2**20 / r.pairs:>8.0f}"
        print(row + f"{r.faults:>8.0f}")


def check_targets(results: list[Result], losses: list[str]) -> list[str]:
    """PASS/FAIL of each target whose sizes this run measured, from this run's ratios."""
    by_key = {(r.name, r.pairs): r for r in results}
    checks = []
    for name in losses:
        large = by_key.get((named(name), LARGE))
        if large and not math.isnan(large.speed_up):
            target = SPEED_UP_TARGETS.get(name, DEFAULT_SPEED_UP)
            verdict = "PASS" if large.speed_up >= target else "FAIL"
            checks.append(
                f"{verdict}  N={LARGE}: {named(name)} ({large.path}) {large.ms:.2f} ms, "
                f"{large.speed_up:.1f}x faster than {BASELINE} (target >= {target:.0f}x)"
            )
        small, eager = by_key.get((named(name), SMALL)), by_key.get((f"{named(name)} [off]", SMALL))
        if small and eager:
            verdict = "PASS" if small.ms <= eager.ms else "FAIL"
            checks.append(
                f"{verdict}  N={SMALL}: {named(name)} ({small.path}) {small.ms:.3f} ms vs "
                f"eager reference {eager.ms:.3f} ms (target: no slower)"
            )
    return checks


def run_device(args: argparse.Namespace, device: torch.device) -> dict:
    """Measure, print and return the results on one device."""
    info = machine(device)
    print(", ".join(f"{key}: {value}" for key, value in info.items()))
    print(f"float32, forward + backward w.r.t. pred, median of {args.repeats} rounds")
    results = [r for n in args.sizes for r in measure(args, int(n), device)]
    print_table(results)
    targets = check_targets(results, args.losses)
    print("\n".join(targets))
    if compile_error() is not None:
        print(f"compilation failed, fast path off: {compile_error()}")
    return {"machine": info, "targets": targets, "results": [asdict(r) for r in results]}


def first_call_child(name: str, dtype: str, device: str) -> None:
    """In a fresh process: seconds to import the compiler, of the first and of a later call."""
    pred, target = random_boxes(FIRST_CALL_PAIRS, torch.device(device), DTYPES[dtype])
    start = time.perf_counter()
    importlib.import_module("torch._inductor.compile_fx")  # what a first compilation imports
    imported = time.perf_counter()
    seconds = []
    for _ in range(3):
        before = path_counts()
        call_start = time.perf_counter()
        torch.autograd.grad(BOX_LOSSES[name].fn(pred, target).sum(), pred)
        synchronize(torch.device(device))
        seconds.append(time.perf_counter() - call_start)
    path = [key for key, count in path_counts().items() if count > before.get(key, 0)]
    result = {"import_s": imported - start, "first_s": seconds[0], "later_s": seconds[-1]}
    print(json.dumps({**result, "path": "+".join(path)}))


def first_calls(args: argparse.Namespace, device: torch.device) -> list[dict]:
    """The first call of each loss and dtype in fresh processes, cold and warm caches."""
    rows = []
    for name in args.losses:
        for dtype in DTYPES:
            with tempfile.TemporaryDirectory() as cache:
                env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache}
                command = [sys.executable, __file__, "--threads", str(args.threads)]
                command += ["--first-call-child", name, dtype, str(device)]
                for caches in ("cold", "warm"):
                    output = subprocess.run(command, env=env, capture_output=True, text=True)
                    if output.returncode != 0:
                        raise RuntimeError(f"{' '.join(command)} failed:\n{output.stderr}")
                    measured = json.loads(output.stdout.strip().splitlines()[-1])
                    rows.append({"loss": name, "dtype": dtype, "caches": caches, **measured})
                    print(
                        f"{name:<11}{dtype:<9}{caches:<6}{measured['path']:<10}"
                        f"{measured['import_s']:>9.2f}{measured['first_s']:>10.2f}"
                        f"{1e3 * measured['later_s']:>10.2f}",
                        flush=True,
                    )
    return rows


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.first_call_child:
        first_call_child(*args.first_call_child)
        return
    if args.min_pairs is not None:
        fast_path.MIN_PAIRS = args.min_pairs
    if args.parallel_min_pairs is not None:
        compiled_kernel.PARALLEL_MIN_PAIRS = args.parallel_min_pairs
    previous = set_fast_path(True)
    try:
        runs = []
        for device in args.devices:
            if args.first_call:
                print(machine(torch.device(device)))
                print(f"first call of {FIRST_CALL_PAIRS} pairs in a fresh process")
                print(f"{'loss':<11}{'dtype':<9}{'caches':<6}{'path':<10}{'import s':>9}", end="")
                print(f"{'first s':>10}{'later ms':>10}")
                runs.append({"first_calls": first_calls(args, torch.device(device))})
            else:
                runs.append(run_device(args, torch.device(device)))
    finally:
        set_fast_path(previous)
    if args.json:
        with open(args.json, "w") as output:
            json.dump({"args": vars(args), "runs": runs}, output, indent=1)


if __name__ == "__main__":
    main()
