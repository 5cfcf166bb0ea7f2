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

The update runs in place under no_grad. The metrics of B^t are recorded just before its update,
reusing the XYXY corners that the loss's forward computed (no second conversion), and once more
after the last update.
"""

import time
from dataclasses import dataclass, field
from typing import Iterable, Optional, Protocol

import torch
from tqdm import tqdm

from .metrics import MetricRecorder
from .schedule import StepSchedule


class BoxLoss(Protocol):
    """What :func:`regress` needs of a loss (see :class:`.losses.SimulationLoss`)."""

    on_boxes: bool  # True: encode() returns XYXY corners, reused for the IoU metric

    def encode(self, boxes: torch.Tensor) -> torch.Tensor:
        """Differentiable library input of boxes (N, 4) (x, y, w, h)."""

    def from_encoded(self, encoded: torch.Tensor) -> torch.Tensor:
        """Per-pair losses (N,) of an encode() output."""


@dataclass
class RegressionOutcome:
    """Result of :func:`regress`.

    Attributes:
        boxes (Tensor[N, 4]): final boxes B^T, (x, y, w, h).
        iou (Tensor[N]): their IoU with the targets.
        recorder (MetricRecorder): the per-iteration metrics.
        wall_time_s (float): time of the whole loop, metrics included.
        first_step_s (float): time of the first update alone; it includes any one-off cost of
            the first call (memory allocation, lazy initialization).
        snapshots (dict[int, Tensor[N, 4]]): boxes after the requested numbers of updates.
    """

    boxes: torch.Tensor
    iou: torch.Tensor
    recorder: MetricRecorder
    wall_time_s: float
    first_step_s: float = float("nan")
    snapshots: dict = field(default_factory=dict)


def loss_gradient(loss: BoxLoss, boxes: torch.Tensor, encoded: torch.Tensor) -> torch.Tensor:
    """Per-pair gradient dL_i/dB_i (Algorithm 1's dL/dB) by autograd of the summed loss.

    Args:
        loss (BoxLoss): the loss.
        boxes (Tensor[N, 4]): leaf tensor requiring grad, (x, y, w, h).
        encoded (Tensor[N, 4]): ``loss.encode(boxes)``.

    Returns:
        Tensor[N, 4]: the gradient with respect to (x, y, w, h).
    """
    (grad,) = torch.autograd.grad(loss.from_encoded(encoded).sum(), boxes)
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
    loss: BoxLoss,
    anchors: torch.Tensor,
    recorder: MetricRecorder,
    schedule: StepSchedule,
    update: str,
    min_size: float,
    snapshot_iters: Iterable[int] = (),
    progress: Optional[str] = None,
) -> RegressionOutcome:
    """Run Algorithm 1 for ``schedule.iterations`` updates on all pairs at once.

    Args:
        loss (BoxLoss): the loss, e.g. a :class:`.losses.SimulationLoss`.
        anchors (Tensor[N, 4]): B^0, (x, y, w, h); not modified.
        recorder (MetricRecorder): receives B^t for t = 0..T.
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
    first_step_s = float("nan")
    boxes = anchors.detach().clone().requires_grad_(True)
    steps = tqdm(range(schedule.iterations), desc=progress, disable=progress is None, leave=False)
    for step in steps:
        encoded = loss.encode(boxes)
        corners = encoded.detach() if loss.on_boxes else None
        iou = recorder.observe(step, boxes.detach(), corners)  # metrics of B^t
        if step in snapshot_iters:
            snapshots[step] = boxes.detach().clone()
        grad = loss_gradient(loss, boxes, encoded)
        apply_update(boxes, grad, schedule.lr(step), iou, update, min_size)
        if step == 0:
            _synchronize(boxes.device)
            first_step_s = time.perf_counter() - start
    final = boxes.detach()
    iou = recorder.observe(schedule.iterations, final)
    if schedule.iterations in snapshot_iters:
        snapshots[schedule.iterations] = final.clone()
    _synchronize(final.device)
    elapsed = time.perf_counter() - start
    return RegressionOutcome(final, iou, recorder, elapsed, first_step_s, snapshots)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
