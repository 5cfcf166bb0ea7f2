"""Algorithm 1: regress every anchor onto its target by gradient descent, all pairs at once.

Per update t (0-based):

1. L_i = loss(B_i, B_gt_i) for every pair i; the gradient dL_i/dB_i is taken by autograd of
   sum_i L_i with respect to the (N, 4) tensor of (x, y, w, h), which is exact because the pairs
   are independent.
2. B <- B - mu_t * dL/dB (``update="descent"``, Algorithm 1) or
   B <- B - mu_t * (2 - IoU(B, B_gt)) * dL/dB (``update="diou"``, the DIoU authors' step; the
   IoU is that of the boxes before the step). Note that the DIoU authors' MATLAB maps gradients
   of the box sides to w and h without the chain rule's factor 1/2; autograd does not copy that.
3. w and h are clamped to >= ``min_size`` so that every box stays a valid, non-empty box.

The update runs in place under no_grad; metrics are computed once per iteration without grad.
"""

import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional

import torch
from tqdm import tqdm

from .metrics import MetricRecorder
from .schedule import StepSchedule

LossFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class RegressionOutcome:
    """Result of :func:`regress`.

    Attributes:
        boxes (Tensor[N, 4]): final boxes B^T, (x, y, w, h).
        iou (Tensor[N]): their IoU with the targets.
        recorder (MetricRecorder): the per-iteration metrics.
        wall_time_s (float): time of the whole loop, metrics included.
        snapshots (dict[int, Tensor[N, 4]]): boxes after the requested numbers of updates.
    """

    boxes: torch.Tensor
    iou: torch.Tensor
    recorder: MetricRecorder
    wall_time_s: float
    snapshots: dict = field(default_factory=dict)


def loss_gradient(loss_fn: LossFn, boxes: torch.Tensor) -> torch.Tensor:
    """Per-pair gradient dL_i/dB_i (Algorithm 1's dL/dB) by autograd of the summed loss.

    Args:
        loss_fn (Callable): maps boxes (N, 4) to per-pair losses (N,).
        boxes (Tensor[N, 4]): leaf tensor requiring grad.

    Returns:
        Tensor[N, 4]: the gradient.
    """
    (grad,) = torch.autograd.grad(loss_fn(boxes).sum(), boxes)
    return grad


@torch.no_grad()
def apply_update(
    boxes: torch.Tensor,
    grad: torch.Tensor,
    lr: float,
    iou: torch.Tensor,
    update: str,
    min_size: float,
) -> None:
    """One in-place step of Algorithm 1, then the size clamp.

    Args:
        boxes (Tensor[N, 4]): B^{t-1}, updated in place to B^t.
        grad (Tensor[N, 4]): dL/dB at B^{t-1} (may be modified in place).
        lr (float): mu_t.
        iou (Tensor[N]): IoU of B^{t-1}, used by ``update="diou"`` only.
        update (str): "descent" or "diou".
        min_size (float): lower bound of w and h.
    """
    if update == "diou":
        grad.mul_((2 - iou).unsqueeze(1))  # the DIoU authors' (2 - IoU) step factor
    elif update != "descent":
        raise ValueError(f"Unknown update rule {update!r}; use 'descent' or 'diou'")
    boxes.sub_(grad, alpha=lr)  # Algorithm 1: B^t = B^{t-1} - mu_t * dL/dB
    boxes[:, 2:].clamp_(min=min_size)


def regress(
    loss_fn: LossFn,
    anchors: torch.Tensor,
    recorder: MetricRecorder,
    schedule: StepSchedule,
    update: str = "descent",
    min_size: float = 1e-6,
    snapshot_iters: Iterable[int] = (),
    progress: Optional[str] = None,
) -> RegressionOutcome:
    """Run Algorithm 1 for ``schedule.iterations`` updates on all pairs at once.

    Args:
        loss_fn (Callable): maps boxes (N, 4) to per-pair losses (N,).
        anchors (Tensor[N, 4]): B^0, (x, y, w, h); not modified.
        recorder (MetricRecorder): receives the boxes after every update (and at t = 0).
        schedule (StepSchedule): the learning rates mu_t and T.
        update (str): "descent" (Algorithm 1) or "diou" (step times (2 - IoU)).
        min_size (float): widths and heights are clamped to >= this after every step.
        snapshot_iters (Iterable[int]): numbers of updates after which to copy the boxes.
        progress (str | None): label of a tqdm progress bar; None disables it.

    Returns:
        RegressionOutcome: final boxes, IoU, metrics, wall time and snapshots.
    """
    snapshot_iters = set(snapshot_iters)
    snapshots = {}
    start = time.perf_counter()
    boxes = anchors.detach().clone().requires_grad_(True)
    iou = recorder.observe(0, boxes.detach())
    if 0 in snapshot_iters:
        snapshots[0] = boxes.detach().clone()
    steps = tqdm(range(schedule.iterations), desc=progress, disable=progress is None, leave=False)
    for step in steps:
        grad = loss_gradient(loss_fn, boxes)
        apply_update(boxes, grad, schedule.lr(step), iou, update, min_size)
        iou = recorder.observe(step + 1, boxes.detach())
        if step + 1 in snapshot_iters:
            snapshots[step + 1] = boxes.detach().clone()
    final = boxes.detach()
    _synchronize(final.device)
    elapsed = time.perf_counter() - start
    return RegressionOutcome(final, iou, recorder, elapsed, snapshots)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
