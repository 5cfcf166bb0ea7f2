import math

import pytest
import torch

from focal_eiou_d2.simulation import DEFAULT_LOSSES, SimulationConfig, run_experiment
from focal_eiou_d2.simulation.config import SIMULATED_LOSSES
from focal_eiou_d2.simulation.engine import regress
from focal_eiou_d2.simulation.losses import SimulationLoss, effective_params
from focal_eiou_d2.simulation.metrics import MetricRecorder
from focal_eiou_d2.simulation.schedule import StepSchedule

TINY = dict(setup="setup2", num_points=4, iterations=8, quantile_every=4)
MIN_SIZE = 1e-6


def one_step(name, anchor, target, lr=0.1, update="descent", params=None):
    """Boxes after one update of a single pair, in float64."""
    anchors = torch.tensor([anchor], dtype=torch.float64)
    targets = torch.tensor([target], dtype=torch.float64)
    loss = SimulationLoss(name, targets, params)
    recorder = MetricRecorder(targets, 1, ())
    schedule = StepSchedule(1, lr, milestones=(), decay=1.0)
    outcome = regress(loss, anchors, recorder, schedule, update=update, min_size=MIN_SIZE)
    return outcome.boxes[0]


def test_schedule_steps_at_the_rounded_milestones():
    schedule = StepSchedule(25, 1.0, milestones=(0.5, 0.9), decay=0.5)
    rates = [schedule.lr(t) for t in (0, 12, 13, 22, 23, 24)]  # round(12.5) = 12, round(22.5) = 22
    assert rates == [1.0, 0.5, 0.5, 0.25, 0.25, 0.25]


@pytest.mark.parametrize("name", sorted(SIMULATED_LOSSES))
def test_every_loss_lowers_the_error(name):
    result = run_experiment(SimulationConfig(losses=(name,), **TINY), progress=False)
    error = result["losses"][name]["error"]
    assert error[-1] < error[0]
    assert all(math.isfinite(e) for e in error)


def test_runs_are_deterministic_for_a_seed():
    config = SimulationConfig(losses=DEFAULT_LOSSES, seed=7, **TINY)
    first = run_experiment(config, progress=False)["losses"]
    second = run_experiment(config, progress=False)["losses"]
    for name in DEFAULT_LOSSES:
        assert first[name]["error"] == second[name]["error"]
        assert first[name]["iou_quantiles"] == second[name]["iou_quantiles"]


def test_l1_step_is_minus_lr_times_the_sign_of_the_error():
    anchor, target = (10.3, 9.8, 1.5, 0.7), (10.0, 10.0, 1.0, 1.0)
    boxes = one_step("smooth_l1", anchor, target, params={"beta": 0.0})  # beta 0: L1
    expected = torch.tensor(anchor, dtype=torch.float64) - 0.1 * torch.tensor([1, -1, 1, -1])
    assert torch.allclose(boxes, expected, atol=1e-12)


# Concentric pair, anchor inside the target: w, h = 1, 0.5 in w_gt, h_gt = 2, 1, so
# IoU = w h / (w_gt h_gt) = 1/4, the enclosing box is the target and rho = 0. By hand:
#   IoU loss:  dL/dw = -h / (w_gt h_gt) = -1/4,  dL/dh = -w / (w_gt h_gt) = -1/2,  dL/dx = dL/dy = 0
#   GIoU: the enclosing term is (C - U) / C = 0 with C = U = w_gt h_gt fixed: same as IoU
#   EIoU (Eq. 7) adds d/dw (w - w_gt)^2 / w_c^2 = 2 (w - w_gt) / w_gt^2 = -1/2, likewise -1 for h
#   Focal-EIoU (Eq. 10, detached weight): IoU^0.5 = 1/2 times the EIoU gradient
ANCHOR, TARGET = (3.0, 3.0, 1.0, 0.5), (3.0, 3.0, 2.0, 1.0)
HAND_GRADIENTS = {
    "iou": (0.0, 0.0, -0.25, -0.5),
    "giou": (0.0, 0.0, -0.25, -0.5),
    "eiou": (0.0, 0.0, -0.75, -1.5),
    "focal_eiou": (0.0, 0.0, -0.375, -0.75),
}


@pytest.mark.parametrize("update, factor", [("descent", 1.0), ("diou", 2 - 0.25)])
@pytest.mark.parametrize("name", sorted(HAND_GRADIENTS))
def test_one_step_equals_the_hand_derived_step(name, update, factor):
    boxes = one_step(name, ANCHOR, TARGET, lr=0.1, update=update)
    gradient = torch.tensor(HAND_GRADIENTS[name], dtype=torch.float64)
    expected = torch.tensor(ANCHOR, dtype=torch.float64) - 0.1 * factor * gradient
    assert torch.allclose(boxes, expected, atol=1e-6)


def test_sizes_stay_positive():
    anchor, target = (10.0, 10.0, 0.3, 0.3), (10.0, 10.0, 1.0, 1.0)
    boxes = one_step("smooth_l1", anchor, target, lr=-5.0)  # a step that flips w and h
    assert torch.allclose(boxes[2:], torch.full((2,), MIN_SIZE, dtype=torch.float64))


def test_non_overlapping_pair_does_not_move_under_focal_eiou():
    anchor, target = (13.0, 10.0, 1.0, 1.0), (10.0, 10.0, 1.0, 1.0)
    boxes = one_step("focal_eiou", anchor, target)
    assert torch.equal(boxes, torch.tensor(anchor, dtype=torch.float64))
    assert not torch.equal(one_step("eiou", anchor, target), boxes)


def test_effective_params_report_library_defaults_and_overrides():
    assert effective_params("focal_eiou")["gamma"] == 0.5
    assert effective_params("focal_eiou", {"gamma": 1.0})["gamma"] == 1.0
    with pytest.raises(ValueError):
        effective_params("giou", {"theta": 1.0})


def test_metrics_follow_the_update_count():
    result = run_experiment(SimulationConfig(losses=("eiou",), **TINY), progress=False)
    run = result["losses"]["eiou"]
    assert len(run["error"]) == len(run["mean_iou"]) == TINY["iterations"] + 1
    assert run["quantile_iterations"] == [0, 4, 8]
    assert run["final"]["error"] == run["error"][-1]
    assert run["iou_quantiles"][-1][3] == pytest.approx(run["final"]["median_iou"], abs=1e-6)
