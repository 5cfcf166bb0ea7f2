"""The fast path's C++ kernels on the CPU: built on first use with the system's C++ compiler.

``csrc/fused_iou_cpu.cpp`` transcribes :mod:`.fused_iou` operation by operation, so its results
are bit for bit those of the ``torch.compile`` kernel it replaces on the CPU; it runs about twice
as fast because the compiler loads the interleaved (x1, y1, x2, y2) boxes with vector permutes,
where inductor's kernel gathers them one value at a time (benchmarks/bench_losses.py).

It covers iou, giou, diou, eiou and focal_eiou with gamma = 0.5 (the default), float32 and
float64. CIoU (whose arctangent the compiler would take from a different math library), other
gammas and CUDA keep the ``torch.compile`` kernel.

The library is compiled once per source, compiler and CPU into the cache directory
(``$FOCAL_EIOU_D2_CACHE_DIR``, else ``$XDG_CACHE_HOME/focal_eiou_d2``, else
``~/.cache/focal_eiou_d2``) with ``$CXX`` (default ``c++``), in about a second; concurrent
processes (one per GPU rank) each write a temporary file and rename it. If the build fails, one
warning names the error (see :func:`build_error`) and the fast path uses ``torch.compile``.
Switch: ``FOCAL_EIOU_D2_CPU_KERNEL=0`` (read at import) or :func:`set_cpu_kernel`.
"""

import ctypes
import functools
import hashlib
import inspect
import logging
import os
import platform
import shlex
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Optional

import torch

from . import fused_iou
from .env_switch import env_switch

logger = logging.getLogger(__name__)

CPU_LOSSES = ("iou", "giou", "diou", "eiou", "focal_eiou")
"""Loss names with a C++ CPU kernel (focal_eiou for gamma = 0.5 only)."""

SOURCE = Path(__file__).with_name("csrc") / "fused_iou_cpu.cpp"
FLAGS = ("-O3", "-march=native", "-fopenmp", "-ffp-contract=off", "-fno-math-errno", "-std=c++17")
"""Compiler flags: no fused multiply-add and no fast-math, which would change the rounding."""

CPU_GAMMA = 0.5
"""The one gamma the C++ focal_eiou covers: its weight IoU^0.5 is a square root."""

_C_TYPES = {torch.float32: "float", torch.float64: "double"}
_DEFAULTS = inspect.signature(fused_iou.focal_eiou_with_grad).parameters
_DEFAULT_EPS, _DEFAULT_GAMMA = _DEFAULTS["eps"].default, _DEFAULTS["gamma"].default
_state = {
    "enabled": env_switch("FOCAL_EIOU_D2_CPU_KERNEL"),
    "build_error": None,
}

Kernel = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def set_cpu_kernel(enabled: bool) -> bool:
    """Use the C++ kernels (True) or ``torch.compile`` (False) on the CPU; returns the previous
    setting."""
    previous, _state["enabled"] = _state["enabled"], bool(enabled)
    return previous


def build_error() -> Optional[Exception]:
    """The exception that made building or loading the library fail, or None."""
    return _state["build_error"]


def find_kernel(name: str, dtype: torch.dtype, params: dict) -> Optional[Kernel]:
    """The C++ kernel of a loss, or None where it has none or cannot be built.

    Args:
        name (str): a loss name.
        dtype (torch.dtype): the dtype the boxes compute in.
        params (dict): the loss's keyword arguments (eps, and gamma for focal_eiou).

    Returns:
        Callable or None: ``kernel(pred, target)`` for contiguous CPU tensors of shape (N, 4),
        returning the loss (N,) and dL/dpred (N, 4); None if the switch is off, the loss, dtype
        or parameters are not covered, or the library failed to build.
    """
    extra = set(params) - {"eps", "gamma"}
    covered = (
        _state["enabled"]
        and name in CPU_LOSSES
        and dtype in _C_TYPES
        and not extra
        and float(params.get("gamma", _DEFAULT_GAMMA)) == CPU_GAMMA
        and (name == "focal_eiou" or "gamma" not in params)
    )
    library = _library() if covered else None
    if library is None:
        return None
    function = getattr(library, f"{name}_{_C_TYPES[dtype]}")
    return functools.partial(_call, function, float(params.get("eps", _DEFAULT_EPS)))


def _call(
    function: Callable, eps: float, pred: torch.Tensor, target: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run a kernel of the library on (N, 4) contiguous CPU boxes."""
    loss = pred.new_empty(pred.shape[0])
    grad = torch.empty_like(pred)
    function(
        pred.data_ptr(),
        target.data_ptr(),
        eps,
        loss.data_ptr(),
        grad.data_ptr(),
        pred.shape[0],
        torch.get_num_threads(),
    )
    return loss, grad


@functools.lru_cache(maxsize=None)
def _library() -> Optional[ctypes.CDLL]:
    """The compiled library, built if not cached; None (with one warning) if that fails."""
    try:
        library = ctypes.CDLL(str(_build()))
    except (OSError, subprocess.SubprocessError) as error:
        _state["build_error"] = error
        logger.warning(
            "focal_eiou_d2: building the C++ CPU kernels failed; the fast path uses "
            "torch.compile on the CPU instead (FOCAL_EIOU_D2_CPU_KERNEL=0 silences this). "
            "Error: %s",
            error,
        )
        return None
    arguments = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_double, ctypes.c_void_p]
    arguments += [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int]
    for name in CPU_LOSSES:
        for c_type in _C_TYPES.values():
            function = getattr(library, f"{name}_{c_type}")
            function.argtypes, function.restype = arguments, None
    return library


def _build() -> Path:
    """Path of the compiled library, compiling it first if the cache does not hold it."""
    compiler = shlex.split(os.environ.get("CXX", "c++"))
    version = subprocess.run(
        compiler + ["--version"], capture_output=True, text=True, check=True
    ).stdout
    key = hashlib.sha256(
        "\n".join([SOURCE.read_text(), " ".join(FLAGS), version, _cpu_description()]).encode()
    ).hexdigest()[:16]
    target = _cache_dir() / f"fused_iou_cpu-{key}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        built = Path(scratch) / target.name
        command = compiler + list(FLAGS) + ["-shared", "-fPIC", str(SOURCE), "-o", str(built)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise OSError(f"{shlex.join(command)} failed:\n{result.stderr.strip()}")
        os.replace(built, target)
    logger.info("focal_eiou_d2: built %s", target)
    return target


def _cache_dir() -> Path:
    """Where compiled libraries are kept."""
    if os.environ.get("FOCAL_EIOU_D2_CACHE_DIR"):
        return Path(os.environ["FOCAL_EIOU_D2_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "focal_eiou_d2"


def _cpu_description() -> str:
    """The CPU's model and features (``-march=native`` builds for them), as part of the cache
    key."""
    lines = [platform.machine()]
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            lines += [line for line in cpuinfo if line.startswith(("model name", "flags"))][:2]
    except OSError:
        lines.append(platform.processor())
    return "".join(lines)
