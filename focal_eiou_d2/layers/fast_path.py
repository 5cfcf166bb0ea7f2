"""Compiled fast path of the IoU-family losses, chosen automatically by ``box_regression_loss``.

The fast path evaluates a loss of :mod:`.fused_iou` (value and closed-form gradient in one pass)
compiled by ``torch.compile`` (inductor, dynamic batch size) inside a ``torch.autograd.Function``
whose backward only scales, in place, the gradient the forward computed. On the CPU the C++
transcription of :mod:`.cpu_kernel` replaces the ``torch.compile`` kernel where it covers the call
(same results bit for bit, about twice as fast). It computes the same function as the reference
implementations, which it leaves untouched: ``eiou_loss`` and the others stay pure autograd code,
only the dispatch ``box_regression_loss`` takes the fast path.

Selection (:func:`select_path`): "compiled" for the names of :data:`FUSED_LOSSES` when the switch
is on, the reduction is "none", "sum" or "mean", focal_eiou's weight is detached, both boxes are
floating point with the same shape, dtype (half precision counts as float32, upcast as the
reference does) and a CPU or CUDA device, there are at least :data:`MIN_PAIRS` pairs and no
compilation has failed; "reference" otherwise, and always while an enclosing ``torch.compile``
traces the caller (which then fuses the reference itself).

Switch: the environment variable ``FOCAL_EIOU_D2_FAST_PATH=0`` (read at import) or
:func:`set_fast_path`. Query: :func:`select_path`, :func:`path_counts`, :func:`compile_error`.

Compilation happens lazily on the first call for each (loss, dtype, device), takes seconds, and is
cached by ``torch.compile`` (and on disk by inductor). N, eps and gamma are dynamic; the first call
with a non-default gamma, or under ``torch.inference_mode``, compiles once more. Any exception
while compiling or running the compiled kernel, other than running out of memory, switches
compilation off for the process with one warning; that call and all later ones use the reference
path, which raises the error again if it did not come from compilation. The C++ CPU kernels
build once per machine and fall back to ``torch.compile`` on their own (see :mod:`.cpu_kernel`).

The gradient is not differentiable: a backward with ``create_graph=True`` (double backward,
gradgradcheck) through the fast path raises an error that names the switch.
"""

import functools
import inspect
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Optional

import torch

from . import fused_iou
from .cpu_kernel import find_kernel
from .env_switch import env_switch
from .focal_eiou import _check_gamma, focal_eiou_loss
from .loss_utils import reduce_loss, upcast_float

logger = logging.getLogger(__name__)

FUSED_LOSSES: Mapping[str, Callable[..., tuple[torch.Tensor, torch.Tensor]]] = MappingProxyType(
    {
        "iou": fused_iou.iou_with_grad,
        "giou": fused_iou.giou_with_grad,
        "diou": fused_iou.diou_with_grad,
        "ciou": fused_iou.ciou_with_grad,
        "eiou": fused_iou.eiou_with_grad,
        "focal_eiou": fused_iou.focal_eiou_with_grad,
    }
)
"""Loss names with a fast path, and their fused value-and-gradient functions."""

MIN_PAIRS = 256
"""Fewest box pairs for the compiled path (assign to change). The compiled path is faster from 2
pairs up, but below a few thousand pairs it saves well under 1 ms per call
(benchmarks/bench_losses.py), which takes thousands of calls to repay a compilation of seconds:
tiny calls (unit tests, a single image) stay on the reference path. Inductor would specialize
sizes 0 and 1 anyway. The C++ CPU kernels compile nothing per call, but a lower threshold would
move small batches (the quickstart RetinaNet's 150 to 250 positives) off the reference path and
change their rounding, hence the README's trained numbers."""

_DEFAULT_GAMMA = inspect.signature(focal_eiou_loss).parameters["gamma"].default

_state = {
    "enabled": env_switch("FOCAL_EIOU_D2_FAST_PATH"),
    "compile_error": None,
}
_path_counts: Counter = Counter()


def set_fast_path(enabled: bool) -> bool:
    """Switch the fast path on or off for the process.

    Args:
        enabled (bool): False makes ``box_regression_loss`` always use the reference path. True
            does not undo a compilation failure (see :func:`compile_error`).

    Returns:
        bool: the previous setting.
    """
    previous, _state["enabled"] = _state["enabled"], bool(enabled)
    return previous


def compile_error() -> Optional[Exception]:
    """The exception that switched compilation off, or None if it has not failed."""
    return _state["compile_error"]


def path_counts() -> dict[str, int]:
    """How many ``box_regression_loss`` calls on boxes took each path ("compiled", "reference")."""
    return dict(_path_counts)


def select_path(
    name: str, pred: torch.Tensor, target: torch.Tensor, reduction: str = "none", **params
) -> str:
    """The path ``box_regression_loss(name, pred, target, reduction, **params)`` takes.

    Args:
        name (str): a loss name.
        pred (Tensor[..., 4]): predicted boxes.
        target (Tensor[..., 4]): target boxes.
        reduction (str): the reduction.
        **params: the loss's hyper-parameters.

    Returns:
        str: "compiled" or "reference" (see the module docstring for the conditions).
    """
    supported = (
        _state["enabled"]
        and _state["compile_error"] is None
        and name in FUSED_LOSSES
        and reduction in ("none", "sum", "mean")
        and params.get("detach_weight", True)
        and not torch.compiler.is_compiling()
        and pred.is_floating_point()
        and target.is_floating_point()
        and _compute_dtype(pred) == _compute_dtype(target)
        and pred.shape == target.shape
        and pred.device == target.device
        and pred.device.type in ("cpu", "cuda")
        and pred.numel() >= 4 * MIN_PAIRS
    )
    return "compiled" if supported else "reference"


def box_loss(
    name: str,
    pred: torch.Tensor,
    target: torch.Tensor,
    reduction: str,
    reference: Callable[..., torch.Tensor],
    **params,
) -> torch.Tensor:
    """The loss ``name`` through the path :func:`select_path` chooses.

    Args:
        name (str): a loss name.
        pred (Tensor[..., 4]): predicted boxes, XYXY.
        target (Tensor[..., 4]): target boxes, XYXY.
        reduction (str): a reduction the loss supports.
        reference (Callable): the reference loss, called as
            ``reference(pred, target, reduction=reduction, **params)``.
        **params: the loss's hyper-parameters.

    Returns:
        Tensor: shape (...) for "none", else a scalar.
    """
    if select_path(name, pred, target, reduction, **params) == "compiled":
        loss = _compiled_loss(name, pred, target, reduction, params)
        if loss is not None:
            _path_counts["compiled"] += 1
            return loss
    _path_counts["reference"] += 1
    return reference(pred, target, reduction=reduction, **params)


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
                "switch it off with set_fast_path(False) or FOCAL_EIOU_D2_FAST_PATH=0"
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
    """``grad * grad_loss[:, None]``, in place.

    The upstream gradient of ``loss.sum()`` (and of ``reduction="sum"``) is one value expanded to
    N (stride 0): one scalar product then, and none at all when that value is 1 (x * 1 == x
    exactly), which spares a pass over the (N, 4) buffer.
    """
    if grad_loss.numel() == 0 or grad_loss.stride(0) != 0:
        return grad.mul_(grad_loss.unsqueeze(-1))
    factor = grad_loss[0].item()
    return grad if factor == 1 else grad.mul_(factor)


def _run_kernel(
    kernel: Callable, boxes: torch.Tensor, other: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``kernel(boxes, other)`` on detached contiguous boxes, outside autocast.

    Detached and without autocast (float32 is what the reference computes in under autocast too),
    so that neither requires_grad nor autocast makes the compiled kernel recompile.
    """
    boxes, other = boxes.detach().contiguous(), other.detach().contiguous()
    if not torch.is_autocast_enabled(boxes.device.type):
        return kernel(boxes, other)
    with torch.autocast(boxes.device.type, enabled=False):
        return kernel(boxes, other)


def _compiled_loss(
    name: str, pred: torch.Tensor, target: torch.Tensor, reduction: str, params: dict
) -> Optional[torch.Tensor]:
    """The loss through the compiled kernel; None if compilation failed (then switched off)."""
    kernel_params = {key: value for key, value in params.items() if key != "detach_weight"}
    if name == "focal_eiou":
        _check_gamma(kernel_params.get("gamma", _DEFAULT_GAMMA))
    pred, target = upcast_float(pred), upcast_float(target)
    kernel = _kernel(name, pred.dtype, pred.device, kernel_params)
    try:
        loss = _FusedBoxLoss.apply(_pairs(pred), _pairs(target), kernel)
    except torch.OutOfMemoryError:
        raise
    except Exception as error:  # any compiler failure: see the module docstring
        _state["compile_error"] = error
        logger.warning(
            "focal_eiou_d2: compiling the %s loss failed; using the reference path from now on "
            "(set FOCAL_EIOU_D2_FAST_PATH=0 to silence this). Error: %s",
            name,
            error,
        )
        return None
    return reduce_loss(loss if pred.dim() == 2 else loss.reshape(pred.shape[:-1]), reduction)


def _pairs(boxes: torch.Tensor) -> torch.Tensor:
    """``boxes`` (..., 4) as (N, 4); unchanged, without a view in the graph, if already 2-D."""
    return boxes if boxes.dim() == 2 else boxes.reshape(-1, 4)


def _kernel(name: str, dtype: torch.dtype, device: torch.device, params: dict) -> Callable:
    """The kernel of one call, ``kernel(pred, target)``: the C++ one on the CPU where it covers
    the call (:mod:`.cpu_kernel`), else the ``torch.compile`` one."""
    if device.type == "cpu":
        kernel = find_kernel(name, dtype, params)
        if kernel is not None:
            return kernel
    gamma = params.get("gamma", _DEFAULT_GAMMA)
    if name == "focal_eiou" and gamma != _DEFAULT_GAMMA:
        # The default gamma, 0.5, compiles as a constant (the power becomes a square root, about
        # 1.5 ms faster per 10^6 pairs); any other as a tensor, so that a new value does not
        # compile again (the float eps is dynamic as is).
        params = {**params, "gamma": torch.tensor(gamma, dtype=torch.float64)}
    return functools.partial(_compiled_kernel(name, dtype, device), **params)


@functools.lru_cache(maxsize=None)
def _compiled_kernel(name: str, dtype: torch.dtype, device: torch.device) -> Callable:
    """The compiled kernel of ``name`` for one (dtype, device), created once.

    ``torch.compile`` compiles lazily, at the first call, with the batch size dynamic. Two options
    of inductor's C++ backend matter: its tiling heuristics decline to vectorize a loop that reads
    and writes (N, 4) boxes with stride 4 (vectorized, the kernel runs about 6x faster), and
    without dynamic threads it decides on multithreading from the first call's N (and the thread
    count) for good.
    """
    from torch._inductor import config  # here, not at the top: importing inductor takes seconds

    options = {"cpp.enable_tiling_heuristics": False, "cpp.dynamic_threads": True}
    return torch.compile(
        FUSED_LOSSES[name],
        dynamic=True,
        fullgraph=True,
        options={key: value for key, value in options.items() if hasattr(config, key)},
    )


def _compute_dtype(boxes: torch.Tensor) -> torch.dtype:
    """The dtype the losses compute in for ``boxes`` (see ``loss_utils.upcast_float``)."""
    return boxes.dtype if boxes.dtype in (torch.float32, torch.float64) else torch.float32
