import math

import pytest
import torch
from box_samples import generic_pairs
from torch.autograd import gradcheck

from focal_eiou_d2.layers import (
    ciou_loss,
    diou_loss,
    eiou_loss,
    focal_eiou_loss,
    focal_eiou_star_loss,
    focal_eiou_v1_loss,
    focal_l1_loss,
    giou_loss,
    iou_loss,
    smooth_l1_loss,
)


def _restore_gradient(loss, factor, multiplier):
    """Add the gradient of a factor the loss detaches, leaving the value unchanged.

    A loss computing factor.detach() * multiplier differentiates as factor * d(multiplier);
    adding (factor - factor.detach()) * multiplier.detach() supplies the missing
    multiplier * d(factor), so finite differences of the value can check the rest.
    """
    return loss + (factor - factor.detach()) * multiplier.detach()


@pytest.mark.parametrize(
    "loss_fn",
    [
        iou_loss,
        giou_loss,
        diou_loss,
        eiou_loss,
        lambda a, b: focal_eiou_loss(a, b, detach_weight=False),
        lambda a, b: focal_eiou_loss(a, b, gamma=1.5, detach_weight=False, reduction="weighted"),
        focal_eiou_v1_loss,
        focal_eiou_star_loss,
    ],
)
def test_gradcheck(loss_fn):
    assert gradcheck(loss_fn, generic_pairs())


def test_gradcheck_ciou_with_alpha_detached():
    def ciou_with_alpha_gradient(pred, target):
        # Eq. 5's alpha and v recomputed here, differentiably.
        wh1, wh2 = pred[:, 2:] - pred[:, :2], target[:, 2:] - target[:, :2]
        angles = torch.atan(wh1[:, 0] / wh1[:, 1]), torch.atan(wh2[:, 0] / wh2[:, 1])
        v = 4 / math.pi**2 * (angles[1] - angles[0]) ** 2
        alpha = v / (iou_loss(pred, target) + v + 1e-7)
        return _restore_gradient(ciou_loss(pred, target), alpha, v)

    assert gradcheck(ciou_with_alpha_gradient, generic_pairs())


def test_gradcheck_focal_eiou_with_weight_detached():
    def focal_eiou_with_weight_gradient(pred, target):
        weight = (1 - iou_loss(pred, target)) ** 0.5
        return _restore_gradient(focal_eiou_loss(pred, target), weight, eiou_loss(pred, target))

    assert gradcheck(focal_eiou_with_weight_gradient, generic_pairs())


@pytest.mark.parametrize(
    "loss_fn",
    [
        focal_l1_loss,
        lambda a, b: focal_l1_loss(a, b, beta=0.5),
        lambda a, b: smooth_l1_loss(a, b, beta=0.3),
    ],
)
def test_gradcheck_coordinate_losses(loss_fn):
    # Errors away from the kinks of |x| (0), FocalL1 (1) and smooth L1 (beta).
    input = torch.tensor(
        [[0.05, 0.42, 0.9, 1.7], [-2.5, -0.6, 3.1, -0.2]], dtype=torch.float64, requires_grad=True
    )
    target = torch.zeros_like(input, requires_grad=True)
    assert gradcheck(loss_fn, (input, target))
