"""Benchmark of the box-regression losses (not a test): forward + backward time and peak memory.

For each N, every implementation computes the per-pair loss of N random valid float32 box pairs,
sums it and takes the gradient with respect to the predictions. Ours: the named functions
(``iou_loss``, ``giou_loss``, ..., ``focal_eiou_loss``) and the same losses by name through
``box_regression_loss``; theirs: torchvision's ``generalized_box_iou_loss``,
``distance_box_iou_loss`` and ``complete_box_iou_loss``, and Detectron2's GIoU (fvcore), DIoU and
CIoU. All are eager PyTorch autograd.

Time: median and minimum over ``--rounds`` rounds after one warm-up round; each round runs every
implementation once, so that load from other processes affects all of them alike. The ratio is
the median against the median of torchvision's loss of the same kind in the same run (GIoU for
``iou``, which torchvision lacks; CIoU for ``eiou`` and ``focal_eiou``, which replace CIoU's
aspect-ratio term by width and height terms). Peak memory: on CPU, the highest total of live
tensor bytes allocated during one step, from the profiler's allocation events (inputs excluded,
outputs and saved tensors included); on CUDA, ``torch.cuda.max_memory_allocated`` above the
bytes allocated before the step.

On a CPU that other processes keep busy, set ``OMP_WAIT_POLICY=PASSIVE``: with OpenMP's default
(threads spin while they wait) an operation that opens a parallel region (exp, sqrt, atan, pow)
can wait milliseconds for a core, whatever its size, and that wait then dominates the times.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_losses.py
    PYTHONPATH=. .venv/bin/python benchmarks/bench_losses.py --sizes 1e3 1e4 --losses eiou ciou
    OMP_WAIT_POLICY=PASSIVE PYTHONPATH=. .venv/bin/python benchmarks/bench_losses.py --json out.json
"""

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable

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
    box_regression_loss,
    ciou_loss,
    diou_loss,
    eiou_loss,
    focal_eiou_loss,
    giou_loss,
    iou_loss,
)

OURS = {
    "iou": iou_loss,
    "giou": giou_loss,
    "diou": diou_loss,
    "ciou": ciou_loss,
    "eiou": eiou_loss,
    "focal_eiou": focal_eiou_loss,
}
TORCHVISION = {
    "giou": ("torchvision generalized_box_iou_loss", generalized_box_iou_loss),
    "diou": ("torchvision distance_box_iou_loss", distance_box_iou_loss),
    "ciou": ("torchvision complete_box_iou_loss", complete_box_iou_loss),
}
DETECTRON2 = {
    "giou": ("detectron2 giou_loss (fvcore)", d2_giou_loss),
    "diou": ("detectron2 diou_loss", d2_diou_loss),
    "ciou": ("detectron2 ciou_loss", d2_ciou_loss),
}
KIND = {
    "iou": "giou",
    "giou": "giou",
    "diou": "diou",
    "ciou": "ciou",
    "eiou": "ciou",
    "focal_eiou": "ciou",
}
"""The key in TORCHVISION of the loss each of ours is compared with."""


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", type=float, default=[1e3, 1e4, 1e6])
    parser.add_argument("--losses", nargs="+", choices=list(OURS), default=list(OURS))
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per N")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-memory", action="store_true", help="skip the peak memory")
    parser.add_argument("--json", help="also write the results to this path")
    return parser.parse_args(argv)


def machine(device: torch.device) -> dict:
    """CPU model, threads, load average, versions and, on CUDA, the GPU."""
    with open("/proc/cpuinfo") as cpuinfo:
        models = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model n")]
    info = {
        "cpu": models[0] if models else "?",
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "load_average": " ".join(f"{load:.2f}" for load in os.getloadavg()),
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "unset"),
        "torch": torch.__version__,
        "device": str(device),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def random_boxes(pairs: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Valid float32 XYXY pairs: targets with sides in [5, 300], predictions jittered around them
    (mostly overlapping), the predictions requiring grad."""
    generator = torch.Generator().manual_seed(0)
    centre = 500 * torch.rand(pairs, 2, generator=generator)
    size = 5 + 295 * torch.rand(pairs, 2, generator=generator)
    target = torch.cat([centre - size / 2, centre + size / 2], dim=-1)
    pred_centre = centre + 0.3 * size * torch.randn(pairs, 2, generator=generator)
    pred_size = size * torch.exp(0.3 * torch.randn(pairs, 2, generator=generator))
    pred = torch.cat([pred_centre - pred_size / 2, pred_centre + pred_size / 2], dim=-1)
    return pred.to(device).requires_grad_(True), target.to(device)


def implementations(losses: list[str]) -> list[tuple[str, str, Callable]]:
    """(row label, kind for the ratio, loss function) of every implementation to time."""
    found = []
    for name in losses:
        by_name = lambda p, t, name=name: box_regression_loss(name, p, t)  # noqa: E731
        found.append((f"ours {OURS[name].__name__}", KIND[name], OURS[name]))
        found.append((f"ours box_regression_loss('{name}')", KIND[name], by_name))
    for kind in TORCHVISION:
        for label, fn in (TORCHVISION[kind], DETECTRON2[kind]):
            found.append((label, kind, fn))
    return found


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_bytes(step: Callable[[], object], device: torch.device) -> int:
    """Peak tensor bytes allocated during one step, above those live before it."""
    if device.type == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        step()
        synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
        step()
    events = [e for e in profiler.profiler.kineto_results.events() if e.name() == "[memory]"]
    live = peak = 0
    for event in sorted(events, key=lambda event: event.start_ns()):
        live += event.nbytes()
        peak = max(peak, live)
    return peak


def measure(args: argparse.Namespace, pairs: int, device: torch.device) -> list[dict]:
    """Every implementation at one N: median and fastest round, ratio, peak memory."""
    pred, target = random_boxes(pairs, device)
    found = implementations(args.losses)
    steps = {
        label: (lambda fn=fn: torch.autograd.grad(fn(pred, target).sum(), pred))
        for label, _, fn in found
    }
    seconds = {label: [] for label in steps}
    for round_index in range(args.rounds + 1):  # the first round warms up, untimed
        for label, step in steps.items():
            synchronize(device)
            start = time.perf_counter()
            step()
            synchronize(device)
            if round_index:
                seconds[label].append(time.perf_counter() - start)
    results = []
    for label, kind, _ in found:
        result = {"name": label, "pairs": pairs, "kind": kind}
        result["ms"] = 1e3 * statistics.median(seconds[label])
        result["min_ms"] = 1e3 * min(seconds[label])
        memory = None if args.no_memory else peak_bytes(steps[label], device) / 2**20
        results.append({**result, "peak_mb": memory})
    reference = {r["kind"]: r["ms"] for r in results if r["name"] == TORCHVISION[r["kind"]][0]}
    for result in results:
        result["ratio"] = result["ms"] / reference[result["kind"]]
    return results


def print_table(results: list[dict]) -> None:
    print(f"{'implementation':<40}{'N':>9}{'median ms':>11}{'min ms':>10}{'/ tv':>6}", end="")
    print(f"{'tv':>6}{'peak MB':>10}{'B/pair':>8}")
    for r in results:
        row = f"{r['name']:<40}{r['pairs']:>9}{r['ms']:>11.3f}{r['min_ms']:>10.3f}"
        row += f"{r['ratio']:>6.2f}{r['kind']:>6}"
        if r["peak_mb"] is not None:
            row += f"{r['peak_mb']:>10.2f}{r['peak_mb'] * 2**20 / r['pairs']:>8.0f}"
        print(row)


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    info = machine(device)
    print(", ".join(f"{key}: {value}" for key, value in info.items()))
    print(f"float32, forward + backward w.r.t. pred, {args.rounds} rounds after 1 warm-up")
    results = []
    for pairs in args.sizes:
        results += measure(args, int(pairs), device)
    print_table(results)
    print(f"load average at the end: {' '.join(f'{load:.2f}' for load in os.getloadavg())}")
    if args.json:
        with open(args.json, "w") as output:
            json.dump({"args": vars(args), "machine": info, "results": results}, output, indent=1)


if __name__ == "__main__":
    main()
