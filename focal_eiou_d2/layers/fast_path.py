"""The fast path of the IoU-family losses: whether a call runs the fused kernel, and how.

Each public loss with a fused kernel (``iou_loss``, ``giou_loss``, ``diou_loss``, ``ciou_loss``,
``eiou_loss``, ``focal_eiou_loss``) first calls :func:`fused_loss`. Where :func:`select_path`, the
one place that decides, says "compiled", the loss's fused kernel (:mod:`.fused_iou`, compiled by
``torch.compile``, :mod:`.compiled_kernel`) computes the per-pair loss and its closed-form
gradient in one pass, and the loss function returns that result; where it says "reference", the
loss function computes its own pure-autograd implementation. ``box_regression_loss`` calls those
same functions, so the dispatch by name and the named functions always take the same path.

The fused kernel runs when the switch is on, the loss has one, the reduction is "none", "sum" or
"mean", focal_eiou's weight is detached, both boxes are floating point with the same shape
(..., 4), compute dtype (half precision counts as float32, upcast as the reference does) and a
CPU or CUDA device, there are at least :data:`MIN_PAIRS` pairs, no compilation has failed, and no
enclosing ``torch.compile`` is tracing the caller (which then fuses the reference itself).

Switch: the environment variable ``FOCAL_EIOU_D2_FAST_PATH`` (read at import; "on", the default,
or "off") or :func:`set_fast_path`. :func:`path_counts` counts the path each call took.

The fused kernel gives the reference's values and gradients up to rounding (float64 tests,
degenerate boxes included). It compiles at the first call per (loss, dtype, device), in seconds;
if compiling fails, one warning names the error (kept in :func:`compile_error`) and every later
call takes the reference path. Its gradient is not differentiable: a backward with
``create_graph=True`` (double backward, gradgradcheck) raises an error that names the switch.
"""

import logging
import os
from collections import Counter
from typing import Optional

import torch

from . import compiled_kernel
from .fused_iou import FUSED_LOSSES
from .hyperparams import FOCAL_EIOU_GAMMA
from .loss_utils import REDUCTIONS, compute_dtype, reduce_loss, upcast_float

logger = logging.getLogger(__name__)

ENVIRONMENT_VARIABLE = "FOCAL_EIOU_D2_FAST_PATH"
SWITCH_VALUES = {"on": True, "1": True, "true": True, "off": False, "0": False, "false": False}
"""Values of the environment variable (any case); unset or empty means "on"."""

MIN_PAIRS = 256
"""Fewest box pairs for a fused kernel (assign to change). Below it the fused path saves too
little time per call to repay a ``torch.compile`` compilation of several seconds in a process's
life (docs/performance.md, "The size threshold", measures both), and tiny calls (unit tests, a
single image) stay on the reference path."""


def _switch_from_environment() -> bool:
    """The switch's value in the environment; ValueError naming the variable if it is invalid."""
    value = os.environ.get(ENVIRONMENT_VARIABLE, "")
    key = value.strip().lower() or "on"
    if key not in SWITCH_VALUES:
        raise ValueError(
            f"{ENVIRONMENT_VARIABLE}={value!r} is neither 'on' (the default: fused kernels where "
            "they apply) nor 'off' (the reference implementations only)"
        )
    return SWITCH_VALUES[key]


_state = {"enabled": _switch_from_environment(), "compile_error": None}
_path_counts: Counter = Counter()


def set_fast_path(enabled: bool) -> bool:
    """Switch the fast path on or off for the process.

    Args:
        enabled (bool): False makes every loss compute its reference implementation. True does
            not undo a compilation failure (see :func:`compile_error`).

    Returns:
        bool: the previous setting.
    """
    if not isinstance(enabled, bool):
        raise TypeError(f"set_fast_path takes True or False, got a {type(enabled).__name__}")
    previous, _state["enabled"] = _state["enabled"], enabled
    return previous


def compile_error() -> Optional[Exception]:
    """The exception that switched the fast path off, or None if no compilation failed."""
    return _state["compile_error"]


def path_counts() -> dict[str, int]:
    """How many calls of a loss with a fused kernel took each path ("compiled", "reference")."""
    return dict(_path_counts)


def select_path(
    name: str, pred: torch.Tensor, target: torch.Tensor, reduction: str = "none", **params
) -> str:
    """The path a call of the loss ``name`` takes; the only place that decides it.

    Args:
        name (str): a loss name (a key of ``BOX_LOSSES``).
        pred (Tensor[..., 4]): predicted boxes.
        target (Tensor[..., 4]): target boxes.
        reduction (str): the reduction.
        **params: the loss's hyper-parameters.

    Returns:
        str: "compiled" (the fused kernel) or "reference" (see the module docstring).
    """
    fused = (
        _state["enabled"]
        and _state["compile_error"] is None
        and name in FUSED_LOSSES
        and reduction in REDUCTIONS
        and params.get("detach_weight", True)
        and not torch.compiler.is_compiling()
        and pred.is_floating_point()
        and target.is_floating_point()
        and compute_dtype(pred) == compute_dtype(target)
        and pred.shape == target.shape
        and pred.shape[-1:] == (4,)
        and pred.device == target.device
        and pred.device.type in ("cpu", "cuda")
        and pred.numel() >= 4 * MIN_PAIRS
    )
    return "compiled" if fused else "reference"


def fused_loss(
    name: str, pred: torch.Tensor, target: torch.Tensor, reduction: str, **params
) -> Optional[torch.Tensor]:
    """The loss through its fused kernel where :func:`select_path` says "compiled", else None.

    Args:
        name (str): a key of ``FUSED_LOSSES``.
        pred (Tensor[..., 4]): predicted boxes, XYXY.
        target (Tensor[..., 4]): target boxes, XYXY.
        reduction (str): "none" | "sum" | "mean" (others take the reference path).
        **params: every hyper-parameter of the loss, validated: eps, and gamma and
            detach_weight for focal_eiou.

    Returns:
        Tensor or None: shape (...) for "none", else a scalar; None where the caller must
        compute the reference (also when compiling fails, which switches the fast path off with
        one warning).
    """
    loss = None
    if select_path(name, pred, target, reduction, **params) == "compiled":
        loss = _compiled_loss(name, pred, target, params)
    _path_counts["reference" if loss is None else "compiled"] += 1
    return None if loss is None else reduce_loss(loss, reduction)


def _compiled_loss(
    name: str, pred: torch.Tensor, target: torch.Tensor, params: dict
) -> Optional[torch.Tensor]:
    """Per-pair loss of shape (...) through the compiled kernel; None if compiling failed."""
    pred, target = upcast_float(pred), upcast_float(target)
    kernel = compiled_kernel.kernel(
        name, pred.dtype, pred.device, params["eps"], params.get("gamma", FOCAL_EIOU_GAMMA)
    )
    try:
        loss = _FusedBoxLoss.apply(_pairs(pred), _pairs(target), kernel)
    except torch.OutOfMemoryError:
        raise
    except Exception as error:  # any failure of the compiler: see the module docstring
        _state["compile_error"] = error
        logger.warning(
            "focal_eiou_d2: compiling the %s loss failed; every loss uses its reference "
            "implementation from now on (set %s=off to silence this). Error: %s",
            name,
            ENVIRONMENT_VARIABLE,
            error,
        )
        return None
    return loss if pred.dim() == 2 else loss.reshape(pred.shape[:-1])


class _FusedBoxLoss(torch.autograd.Function):
    """Per-pair loss of N pairs whose forward also computes the gradient, kept for backward.

    Keeping dL/dpred (4 values per pair) costs less memory than the intermediates autograd would
    keep and spares the backward a second pass over the boxes. The backward scales that buffer in
    place and hands it over as the result, so it allocates nothing; a second backward through a
    retained graph finds the buffer gone and runs the kernel again. The gradient with respect to
    the target is the same kernel with the boxes swapped (every fused loss is symmetric), computed
    only if the target requires grad.
    """

    @staticmethod
    def forward(ctx, pred, target, kernel):
        """pred, target: Tensor[N, 4]; kernel: (pred, target) -> (loss[N], dL/dpred[N, 4])."""
        loss, grad_pred = _run_kernel(kernel, pred, target)
        grad_target = _run_kernel(kernel, target, pred)[1] if ctx.needs_input_grad[1] else None
        ctx.save_for_backward(pred, target)
        ctx.kernel = kernel
        # Not in save_for_backward: these buffers are the backward's to modify and give away.
        ctx.buffers = (grad_pred if ctx.needs_input_grad[0] else None, grad_target)
        return loss

    @staticmethod
    def backward(ctx, grad_loss):
        """grad_loss: Tensor[N]; returns the gradients of pred and target, Tensor[N, 4] or None."""
        if torch.is_grad_enabled():
            raise RuntimeError(
                "focal_eiou_d2's fast path does not support double backward (create_graph=True); "
                f"switch it off with set_fast_path(False) or {ENVIRONMENT_VARIABLE}=off"
            )
        pred, target = ctx.saved_tensors
        buffers, ctx.buffers = ctx.buffers, (None, None)
        grads = []
        for index, (boxes, other) in enumerate(((pred, target), (target, pred))):
            grad = buffers[index]
            if grad is None and ctx.needs_input_grad[index]:
                grad = _run_kernel(ctx.kernel, boxes, other)[1]
            grads.append(None if grad is None else _scale_(grad, grad_loss))
        return grads[0], grads[1], None


def _scale_(grad: torch.Tensor, grad_loss: torch.Tensor) -> torch.Tensor:
    """``grad * grad_loss[:, None]``, in place, without reading a value from a device.

    On the CPU only (where reading a value synchronizes nothing), the upstream gradient of
    ``loss.sum()``, one value 1 expanded to N (stride 0), skips the pass over the (N, 4) buffer:
    x * 1 == x exactly.
    """
    if (
        grad_loss.device.type == "cpu"
        and grad_loss.numel() > 0
        and grad_loss.stride(0) == 0
        and grad_loss[0].item() == 1
    ):
        return grad
    return grad.mul_(grad_loss.unsqueeze(-1))


def _run_kernel(
    kernel: compiled_kernel.Kernel, boxes: torch.Tensor, other: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``kernel(boxes, other)`` on detached contiguous boxes without a negative bit, outside
    autocast.

    Detached and without autocast (float32 is what the reference computes in under autocast too),
    so that neither requires_grad nor autocast makes the compiled kernel recompile. A negative-bit
    view (``torch._neg_view``) is materialized: the compiled kernel would read its storage, which
    holds the negated values.
    """
    boxes = boxes.detach().resolve_neg().contiguous()
    other = other.detach().resolve_neg().contiguous()
    if not torch.is_autocast_enabled(boxes.device.type):
        return kernel(boxes, other)
    with torch.autocast(boxes.device.type, enabled=False):
        return kernel(boxes, other)


def _pairs(boxes: torch.Tensor) -> torch.Tensor:
    """``boxes`` (..., 4) as (N, 4); unchanged, without a view in the graph, if already 2-D."""
    return boxes if boxes.dim() == 2 else boxes.reshape(-1, 4)
