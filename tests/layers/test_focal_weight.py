"""Eq. 10's focal weight IoU^gamma and Eq. 11 as an option of every IoU-family loss but NWD and the
Wise-IoU versions: hand-derived values, torchvision's CIoU and IoU as references, gamma = 0 is the
loss itself bit for bit, and eiou with the weight is focal_eiou bit for bit."""

import math

import pytest
import torch
from torchvision.ops import box_iou, complete_box_iou_loss

from focal_eiou_d2.layers import BOX_LOSSES, box_regression_loss, focal_eiou_loss, siou_loss

# Which losses these are is pinned in tests/layers/test_registry.py.
FOCAL_OPTIONAL = [name for name, spec in BOX_LOSSES.items() if spec.focal_optional]

# Pairs with different IoUs, one of them disjoint (IoU 0, weight 0).
PRED = torch.tensor(
    [[0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 5.0, 4.0], [4.0, 0.0, 6.0, 2.0], [2.0, 3.0, 9.0, 8.0]],
    dtype=torch.float64,
)
TARGET = torch.tensor(
    [[0.0, 0.0, 4.0, 4.0], [0.0, 0.0, 4.0, 4.0], [0.0, 0.0, 2.0, 2.0], [3.0, 2.0, 8.0, 9.0]],
    dtype=torch.float64,
)
IMAGE_SIZE = torch.tensor([[40.0, 60.0]] * 4, dtype=torch.float64)


def inputs(name):
    """The head inputs a loss needs at every call."""
    return {"image_size": IMAGE_SIZE} if name == "mpdiou" else {}


@pytest.mark.parametrize("name", FOCAL_OPTIONAL)
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_gamma_zero_is_the_loss_itself(name, reduction):
    spec = BOX_LOSSES[name]
    plain = spec.fn(PRED, TARGET, reduction=reduction, **inputs(name))
    assert torch.equal(box_regression_loss(name, PRED, TARGET, reduction, **inputs(name)), plain)
    assert torch.equal(
        box_regression_loss(name, PRED, TARGET, reduction, gamma=0.0, **inputs(name)), plain
    )
    # The heads' unchecked form, with the registry's default gamma.
    params = {**spec.defaults, **inputs(name)}
    torch.testing.assert_close(
        spec.per_pair(PRED, TARGET, **params).sum(),
        spec.fn(PRED, TARGET, reduction="sum", **inputs(name)),
        rtol=0,
        atol=0,
    )


@pytest.mark.parametrize("name", FOCAL_OPTIONAL)
def test_weighted_is_eq_11_over_the_iou_weights(name):
    gamma = 0.7
    loss = BOX_LOSSES[name].fn(PRED, TARGET, reduction="none", **inputs(name))
    weight = box_iou(PRED, TARGET).diagonal() ** gamma  # torchvision's IoU
    per_pair = box_regression_loss(name, PRED, TARGET, gamma=gamma, **inputs(name))
    torch.testing.assert_close(per_pair, weight * loss)  # Eq. 10
    weighted = box_regression_loss(name, PRED, TARGET, "weighted", gamma=gamma, **inputs(name))
    torch.testing.assert_close(weighted, (weight * loss).sum() / weight.sum())  # Eq. 11


def test_focal_siou_by_hand():
    # pred (0,0,2,2) inside target (0,0,4,4): IoU 1/4, SIoU 3/4 + (1 - e^(-1/16)) +
    # (1 - e^(-1/2))^4 (tests/layers/test_zoo_siou.py derives it); gamma 0.5: weight 1/2.
    # pred (4,0,6,2) beside target (0,0,2,2): IoU 0, weight 0.
    siou_inside = 0.75 + (1 - math.exp(-1 / 16)) + (1 - math.exp(-0.5)) ** 4
    pred, target = PRED[[0, 2]], TARGET[[0, 2]]
    per_pair = box_regression_loss("siou", pred, target, gamma=0.5)
    torch.testing.assert_close(
        per_pair, torch.tensor([0.5 * siou_inside, 0.0], dtype=torch.float64)
    )
    # Eq. 11: (1/2 * L + 0 * L') / (1/2 + 0) = L, the disjoint pair's loss left out entirely.
    weighted = box_regression_loss("siou", pred, target, "weighted", gamma=0.5)
    torch.testing.assert_close(weighted, torch.tensor(siou_inside, dtype=torch.float64))
    torch.testing.assert_close(siou_loss(pred[:1], target[:1])[0], weighted)


def test_focal_ciou_matches_torchvision():
    gamma = 0.5
    reference = box_iou(PRED, TARGET).diagonal() ** gamma * complete_box_iou_loss(PRED, TARGET)
    ours = box_regression_loss("ciou", PRED, TARGET, gamma=gamma)
    torch.testing.assert_close(ours, reference)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean", "weighted"])
@pytest.mark.parametrize("detach_weight", [True, False])
def test_eiou_with_the_weight_is_focal_eiou(reduction, detach_weight):
    pred = PRED.clone().requires_grad_()
    ours = box_regression_loss(
        "eiou", pred, TARGET, reduction, gamma=0.5, detach_weight=detach_weight
    )
    (ours_grad,) = torch.autograd.grad(ours.sum(), pred)
    focal = focal_eiou_loss(pred, TARGET, 0.5, reduction, detach_weight=detach_weight)
    (focal_grad,) = torch.autograd.grad(focal.sum(), pred)
    assert torch.equal(ours, focal)
    if detach_weight:
        assert torch.equal(ours_grad, focal_grad)
    else:  # the IoU of the weight is a second branch of the graph: summed in another order
        torch.testing.assert_close(ours_grad, focal_grad, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", FOCAL_OPTIONAL)
def test_weight_gradient_only_without_detach(name):
    pred = PRED[[1]].clone().requires_grad_()  # an overlapping pair
    args = (name, pred, TARGET[[1]])
    loss = BOX_LOSSES[name].fn(*args[1:], **{k: v[[1]] for k, v in inputs(name).items()})
    (plain,) = torch.autograd.grad(loss.sum(), pred)
    extra = {k: v[[1]] for k, v in inputs(name).items()}
    detached = box_regression_loss(*args, gamma=2.0, **extra)
    (grad_detached,) = torch.autograd.grad(detached.sum(), pred)
    weight = box_iou(PRED[[1]], TARGET[[1]]).diagonal() ** 2.0
    torch.testing.assert_close(grad_detached, weight * plain)  # the weight is a constant
    through = box_regression_loss(*args, gamma=2.0, detach_weight=False, **extra)
    (grad_through,) = torch.autograd.grad(through.sum(), pred)
    assert not torch.allclose(grad_through, grad_detached)


@pytest.mark.parametrize("name", FOCAL_OPTIONAL)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_finite_for_degenerate_boxes_and_half_inputs(name, dtype):
    pred = torch.tensor([[0.0, 0.0, 0.0, 0.0], [5.0, 5.0, 5.0, 9.0], [1.0, 1.0, 3.0, 3.0]])
    target = torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 4.0, 4.0], [1.0, 1.0, 3.0, 3.0]])
    pred = pred.to(dtype).requires_grad_()
    extra = {"image_size": torch.tensor([[40.0, 60.0]] * 3)} if name == "mpdiou" else {}
    for detach_weight in (True, False):
        loss = box_regression_loss(
            name,
            pred,
            target.to(dtype),
            "weighted",
            gamma=0.5,
            detach_weight=detach_weight,
            **extra
        )
        (grad,) = torch.autograd.grad(loss, pred)
        assert loss.dtype == torch.float32
        assert torch.isfinite(loss) and torch.isfinite(grad).all()


def test_gamma_is_checked_and_not_taken_by_nwd_or_wise_iou():
    with pytest.raises(ValueError, match="gamma must be a finite number >= 0"):
        box_regression_loss("siou", PRED, TARGET, gamma=-1.0)
    for name in ("nwd", "wiou_v1"):
        with pytest.raises(TypeError, match="gamma"):
            box_regression_loss(name, PRED, TARGET, gamma=0.5)


@pytest.mark.parametrize("name", ["siou", "diou", "alpha_iou"])  # not CIoU: its alpha is constant
def test_gradcheck_with_the_weight_differentiated(name):
    # With detach_weight=True the weight is a constant of the graph by design, which a numerical
    # Jacobian cannot see; with False the whole of Eq. 10 and 11 is differentiated.
    pred = PRED[[0, 1, 3]].clone().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda boxes: box_regression_loss(
            name, boxes, TARGET[[0, 1, 3]], "weighted", gamma=0.5, detach_weight=False
        ),
        (pred,),
    )
