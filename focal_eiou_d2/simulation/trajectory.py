"""Fig. 1 illustration: one anchor regressed onto one target under several losses."""

from collections.abc import Sequence

import torch

from .config import SimulationConfig
from .engine import regress
from .losses import SimulationLoss
from .metrics import MetricRecorder

TRAJECTORY_LOSSES = ("giou", "ciou", "eiou")
TARGET = (0.0, 0.0, 1.0, 1.0)  # (x, y, w, h): unit square at the origin
ANCHOR = (1.4, 0.8, 1.0, 2.4)  # a tall 1 x 2.4 box, right of and above the target, no overlap


def run_trajectories(
    config: SimulationConfig,
    losses: Sequence[str] = TRAJECTORY_LOSSES,
    anchor: Sequence[float] = ANCHOR,
    target: Sequence[float] = TARGET,
) -> dict:
    """Regress a single anchor onto a single target under each loss, in float64.

    Args:
        config (SimulationConfig): gives the schedule, update rule, size clamp and the losses'
            hyper-parameters.
        losses (Sequence[str]): library loss names.
        anchor (Sequence[float]): B^0 as (x, y, w, h).
        target (Sequence[float]): B_gt as (x, y, w, h).

    Returns:
        dict: {"anchor", "target", "iterations", "losses": {name: {"params", "boxes": (T + 1) x 4
        list, "iou": T + 1 list, "error": T + 1 list}}}.

    Raises:
        ValueError: if the anchor or target has a width or height that is not > 0.
    """
    anchors = torch.tensor([anchor], dtype=torch.float64)
    targets = torch.tensor([target], dtype=torch.float64)
    if not bool((torch.cat([anchors, targets])[:, 2:] > 0).all()):
        raise ValueError(f"anchor and target need w, h > 0, got {list(anchor)} and {list(target)}")
    schedule = config.schedule
    steps = range(schedule.iterations + 1)
    out = {"anchor": list(anchor), "target": list(target), "iterations": schedule.iterations}
    out["losses"] = {}
    for name in losses:
        loss = SimulationLoss(name, targets, config.loss_params.get(name))
        recorder = MetricRecorder(targets, schedule.iterations, ())
        outcome = regress(
            loss, anchors, recorder, schedule, config.update, config.min_size, snapshot_iters=steps
        )
        boxes = torch.cat([outcome.snapshots[t] for t in steps])
        out["losses"][name] = {
            "params": loss.params,
            "boxes": boxes.tolist(),
            "iou": recorder.mean_iou.tolist(),  # mean over one pair: its IoU
            "error": recorder.error.tolist(),
        }
    return out
