"""Fig. 1 illustration: one anchor regressed onto one target under several losses."""

from typing import Optional, Sequence

import torch

from .engine import regress
from .losses import SimulationLoss
from .metrics import MetricRecorder
from .schedule import StepSchedule

TRAJECTORY_LOSSES = ("giou", "ciou", "eiou")
TARGET = (0.0, 0.0, 1.0, 1.0)  # (x, y, w, h): unit square at the origin
ANCHOR = (1.4, 0.8, 1.0, 2.4)  # a tall 1 x 2.4 box, right of and above the target, no overlap
SHOWN_ITERATIONS = (0, 5, 10, 20, 40, 80, 160, 200)


def run_trajectories(
    losses: Sequence[str] = TRAJECTORY_LOSSES,
    anchor: Sequence[float] = ANCHOR,
    target: Sequence[float] = TARGET,
    schedule: Optional[StepSchedule] = None,
    update: str = "descent",
    min_size: float = 1e-6,
    loss_params: Optional[dict] = None,
) -> dict:
    """Regress a single anchor onto a single target under each loss, in float64.

    Args:
        losses (Sequence[str]): library loss names.
        anchor (Sequence[float]): B^0 as (x, y, w, h).
        target (Sequence[float]): B_gt as (x, y, w, h).
        schedule (StepSchedule | None): learning rates and T (default: the paper's).
        update (str): "descent" or "diou".
        min_size (float): lower bound of w and h.
        loss_params (dict | None): per-loss hyper-parameters.

    Returns:
        dict: {"anchor", "target", "iterations", "losses": {name: {"boxes": (T + 1) x 4 list,
        "iou": T + 1 list, "error": T + 1 list}}}.
    """
    schedule = schedule or StepSchedule()
    anchors = torch.tensor([anchor], dtype=torch.float64)
    targets = torch.tensor([target], dtype=torch.float64)
    steps = range(schedule.iterations + 1)
    out = {"anchor": list(anchor), "target": list(target), "iterations": schedule.iterations}
    out["losses"] = {}
    for name in losses:
        loss = SimulationLoss(name, targets, (loss_params or {}).get(name))
        recorder = MetricRecorder(targets, schedule.iterations, ())
        outcome = regress(loss, anchors, recorder, schedule, update, min_size, snapshot_iters=steps)
        boxes = torch.cat([outcome.snapshots[t] for t in steps])
        out["losses"][name] = {
            "params": loss.params,
            "boxes": boxes.tolist(),
            "iou": recorder.mean_iou.tolist(),  # mean over one pair: its IoU
            "error": recorder.error.tolist(),
        }
    return out
