import math

import pytest
import torch
from box_samples import random_pairs

from focal_eiou_d2.layers import (
    eiou_loss,
    focal_eiou_loss,
    focal_eiou_star_loss,
    focal_eiou_v1_loss,
    iou_loss,
)
from focal_eiou_d2.layers.iou_losses import eiou_and_iou

# Pairs derived by hand in test_iou_losses.py: (pred, target, IoU, EIoU).
HALF_INSIDE = ([0.0, 0.0, 2.0, 4.0], [0.0, 0.0, 4.0, 4.0], 0.5, 0.78125)
QUARTER_INSIDE = ([0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 4.0, 4.0], 0.25, 1.3125)
DISJOINT = ([4.0, 0.0, 6.0, 2.0], [0.0, 0.0, 2.0, 2.0], 0.0, 1.4)


def _boxes(*cases):
    pred = torch.tensor([case[0] for case in cases], dtype=torch.float64, requires_grad=True)
    target = torch.tensor([case[1] for case in cases], dtype=torch.float64)
    return pred, target


def _focal_l1_by_hand(x, beta):
    # Eq. 9 with alpha = e * beta.
    alpha = math.e * beta
    if x <= 1:
        return -alpha * x**2 * (2 * math.log(beta * x) - 1) / 4
    return -alpha * math.log(beta) * x + alpha * (2 * math.log(beta) + 1) / 4


def test_focal_eiou_by_hand():
    # Eq. 10: IoU^gamma * EIoU = sqrt(1/2) * 0.78125, 0.25^0.5 * 1.3125 and 0 for the disjoint pair.
    pred, target = _boxes(HALF_INSIDE, QUARTER_INSIDE, DISJOINT)
    expected = torch.tensor([math.sqrt(0.5) * 0.78125, 0.5 * 1.3125, 0.0], dtype=torch.float64)
    torch.testing.assert_close(focal_eiou_loss(pred, target), expected, rtol=0, atol=1e-7)


def test_weighted_reduction_by_hand():
    # Eq. 11 with W = IoU^0.5 = (sqrt(1/2), 1/2, 0) and L_EIoU = (0.78125, 1.3125, 1.4).
    pred, target = _boxes(HALF_INSIDE, QUARTER_INSIDE, DISJOINT)
    weights = [math.sqrt(0.5), 0.5, 0.0]
    expected = (weights[0] * 0.78125 + weights[1] * 1.3125) / sum(weights)
    loss = focal_eiou_loss(pred, target, reduction="weighted")
    assert loss.item() == pytest.approx(expected, abs=1e-7)


def test_weighted_reduction_gradient_treats_weights_as_constants():
    pred, target = _boxes(HALF_INSIDE, QUARTER_INSIDE, DISJOINT)
    (grad,) = torch.autograd.grad(focal_eiou_loss(pred, target, reduction="weighted"), pred)
    weights = (1 - iou_loss(pred, target)).detach() ** 0.5
    by_hand = (weights * eiou_loss(pred, target)).sum() / weights.sum()
    (expected,) = torch.autograd.grad(by_hand, pred)
    torch.testing.assert_close(grad, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("detach_weight", [True, False])
def test_weighted_reduction_with_all_weights_zero(detach_weight):
    pred, target = _boxes(DISJOINT, DISJOINT)
    loss = focal_eiou_loss(pred, target, reduction="weighted", detach_weight=detach_weight)
    (grad,) = torch.autograd.grad(loss, pred)
    assert torch.isfinite(grad).all()
    if detach_weight:
        assert loss.item() == 0.0 and loss.requires_grad
    else:
        # The clamped weight eps^gamma is positive: Eq. 11 reduces to the mean EIoU.
        assert loss.item() == pytest.approx(1.4, abs=1e-7)


@pytest.mark.parametrize("detach_weight", [True, False])
def test_gamma_zero_is_eiou(detach_weight):
    pred, target = random_pairs(500, seed=3)
    torch.testing.assert_close(
        focal_eiou_loss(pred, target, gamma=0.0, detach_weight=detach_weight),
        eiou_loss(pred, target),
        rtol=0,
        atol=0,
    )


def test_undetached_weight_has_finite_gradient_without_overlap():
    # Regression: d(IoU^gamma)/dIoU is infinite at IoU = 0 for gamma < 1.
    pred, target = _boxes(DISJOINT, HALF_INSIDE)
    eiou, iou = eiou_and_iou(pred, target)
    (naive_grad,) = torch.autograd.grad((iou**0.5 * eiou).sum(), pred)
    assert not torch.isfinite(naive_grad).all(), "the unguarded formula should produce NaN"

    loss = focal_eiou_loss(pred, target, detach_weight=False)
    (grad,) = torch.autograd.grad(loss.sum(), pred)
    assert torch.isfinite(grad).all()


def test_detached_weight_gives_no_gradient_without_overlap():
    pred, target = _boxes(DISJOINT, HALF_INSIDE)
    (grad,) = torch.autograd.grad(focal_eiou_loss(pred, target).sum(), pred)
    assert (grad[0] == 0).all()
    assert (grad[1] != 0).any()


def test_focal_eiou_star_by_hand():
    # -(1 - IoU)^0.5 * ln(IoU) * EIoU; the disjoint pair has IoU clamped to eps inside the log.
    pred, target = _boxes(HALF_INSIDE, DISJOINT)
    expected = torch.tensor(
        [-math.sqrt(0.5) * math.log(0.5) * 0.78125, -math.log(1e-7) * 1.4], dtype=torch.float64
    )
    torch.testing.assert_close(focal_eiou_star_loss(pred, target), expected, rtol=1e-6, atol=0)


def test_focal_eiou_star_finite_at_iou_zero_and_one():
    pred = torch.tensor([DISJOINT[0], [0.0, 0.0, 4.0, 4.0]], requires_grad=True)
    target = torch.tensor([DISJOINT[1], [0.0, 0.0, 4.0, 4.0]])
    loss = focal_eiou_star_loss(pred, target)
    (grad,) = torch.autograd.grad(loss.sum(), pred)
    assert torch.isfinite(loss).all() and torch.isfinite(grad).all()
    assert loss[1].item() == 0.0


def test_focal_eiou_v1_by_hand():
    # FocalL1 (beta = 0.8) at x = EIoU: x = 0.78125 uses the x <= 1 branch, x = 1.4 the linear one.
    pred, target = _boxes(HALF_INSIDE, DISJOINT)
    expected = torch.tensor(
        [_focal_l1_by_hand(0.78125, 0.8), _focal_l1_by_hand(1.4, 0.8)], dtype=torch.float64
    )
    torch.testing.assert_close(focal_eiou_v1_loss(pred, target), expected, rtol=1e-6, atol=0)


def test_focal_eiou_v1_rejects_bad_beta():
    pred, target = _boxes(HALF_INSIDE)
    with pytest.raises(ValueError, match=r"\[1/e, 1\]"):
        focal_eiou_v1_loss(pred, target, beta=0.1)


@pytest.mark.parametrize("loss_fn", [focal_eiou_loss, focal_eiou_star_loss])
def test_negative_gamma_is_rejected(loss_fn):
    pred, target = _boxes(HALF_INSIDE)
    with pytest.raises(ValueError, match="gamma"):
        loss_fn(pred, target, gamma=-0.5)
