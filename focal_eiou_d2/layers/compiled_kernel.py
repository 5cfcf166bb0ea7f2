"""The fast path's ``torch.compile`` kernels: the functions of :mod:`.fused_iou`, compiled.

Each (source, dtype, device) compiles once, lazily at its first call, with the batch size N and
eps dynamic (no recompilation per batch). Focal-EIoU compiles twice at most: with gamma = 0.5 as
a constant (a square root), and with gamma as a tensor input for every other value.

On the CPU the compiled loop always opens an OpenMP parallel region over all of torch's threads;
below :data:`PARALLEL_MIN_PAIRS` pairs the kernel runs on one thread instead, as ATen's own
elementwise operations do for small tensors.
"""

import functools
from collections.abc import Callable, Mapping
from types import MappingProxyType

import torch

from . import fused_iou

Kernel = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
"""``kernel(pred, target)`` on (N, 4) boxes: the loss (N,) and dL/dpred (N, 4)."""

SOURCES: Mapping[str, Callable] = MappingProxyType(
    {**fused_iou.FUSED_LOSSES, "focal_eiou_sqrt": fused_iou.focal_eiou_sqrt_with_grad}
)
"""The functions compiled: one per fused loss, and focal_eiou's gamma = 0.5 specialization."""

PARALLEL_MIN_PAIRS = 4096
"""Fewest pairs the CPU kernel splits among threads (docs/performance.md, "Threads"): below it,
starting the other threads costs more than it saves, and far more when they wait for a core."""

INDUCTOR_OPTIONS = {"cpp.enable_tiling_heuristics": False, "cpp.dynamic_threads": True}
"""Options of inductor's C++ backend. Its tiling heuristics decline to vectorize a loop that
reads and writes (N, 4) boxes with stride 4; without dynamic threads it decides on
multithreading from the first call's N (and thread count) for good."""


def kernel(name: str, dtype: torch.dtype, device: torch.device, eps: float, gamma: float) -> Kernel:
    """The compiled kernel of one call.

    Args:
        name (str): a fused loss (a key of :data:`SOURCES` but "focal_eiou_sqrt").
        dtype (torch.dtype): float32 or float64.
        device (torch.device): the boxes' device.
        eps (float): the loss's eps.
        gamma (float): focal_eiou's gamma; ignored by the other losses.

    Returns:
        Kernel: compiles at its first call.
    """
    if name == "focal_eiou" and gamma == fused_iou.SQRT_GAMMA:
        compiled, params = _compiled("focal_eiou_sqrt", dtype, device), {"eps": eps}
    elif name == "focal_eiou":
        # On the boxes' device, created there (a copy from the host would synchronize).
        exponent = torch.full((), gamma, dtype=torch.float64, device=device)
        compiled, params = _compiled(name, dtype, device), {"eps": eps, "gamma": exponent}
    else:
        compiled, params = _compiled(name, dtype, device), {"eps": eps}
    return functools.partial(_run, compiled, params)


def _run(
    compiled: Callable, params: dict, pred: torch.Tensor, target: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``compiled(pred, target, **params)``, on one thread for a small batch on the CPU."""
    threads = torch.get_num_threads()
    if pred.device.type != "cpu" or threads == 1 or len(pred) >= PARALLEL_MIN_PAIRS:
        return compiled(pred, target, **params)
    torch.set_num_threads(1)
    try:
        return compiled(pred, target, **params)
    finally:
        torch.set_num_threads(threads)


@functools.lru_cache(maxsize=None)
def _compiled(source: str, dtype: torch.dtype, device: torch.device) -> Callable:
    """``torch.compile`` of ``SOURCES[source]`` for one (dtype, device), created once.

    ``dtype`` and ``device`` only key the cache: one compiled function per key keeps the
    recompilation guards of different keys apart.
    """
    from torch._inductor import config  # here, not at the top: importing inductor takes seconds

    return torch.compile(
        SOURCES[source],
        dynamic=True,
        fullgraph=True,
        options={key: value for key, value in INDUCTOR_OPTIONS.items() if hasattr(config, key)},
    )
