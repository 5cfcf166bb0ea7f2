"""NWD (arXiv 2110.13389): 1 - exp(-W_2 / C) of the boxes' Gaussians, by hand, against the float64
reference, and its behaviour where IoU losses have none (disjoint boxes, identical boxes)."""

import math

import pytest
import torch
import zoo_references as ref
from box_samples import random_pairs

from focal_eiou_d2.layers.nwd import nwd_loss

TINY_EPS = 1e-300


def _tensor(rows):
    return torch.tensor(rows, dtype=torch.float64)


# By hand, W_2^2 = (cx - cx_gt)^2 + (cy - cy_gt)^2 + ((w - w_gt)/2)^2 + ((h - h_gt)/2)^2:
# * half_inside: pred (0,0,2,4), target (0,0,4,4): centres (1,2), (2,2): 1; widths 2, 4: 1;
#   heights equal: 0. W_2 = sqrt(2); C = 12.8: L = 1 - e^(-sqrt(2) / 12.8).
# * disjoint: pred (4,0,6,2), target (0,0,2,2): centres (5,1), (1,1): 16; same sides. W_2 = 4:
#   L = 1 - e^(-4 / 12.8) = 1 - e^(-0.3125); with C = 4: 1 - e^(-1).
HAND_CASES = [
    ([0, 0, 2, 4], [0, 0, 4, 4], 12.8, 1 - math.exp(-math.sqrt(2) / 12.8)),
    ([4, 0, 6, 2], [0, 0, 2, 2], 12.8, 1 - math.exp(-0.3125)),
    ([4, 0, 6, 2], [0, 0, 2, 2], 4.0, 1 - math.exp(-1)),
]


@pytest.mark.parametrize("pred,target,constant,expected", HAND_CASES)
def test_by_hand(pred, target, constant, expected):
    loss = nwd_loss(_tensor(pred), _tensor(target), constant=constant)
    assert loss.item() == pytest.approx(expected, abs=1e-12)
    assert ref.nwd(pred, target, constant) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("constant", [12.8, 50.0])
def test_matches_reference(constant):
    pred, target = random_pairs(300, seed=60)
    expected = _tensor(ref.per_pair(ref.nwd, pred, target, constant=constant))
    loss = nwd_loss(pred, target, constant=constant, eps=TINY_EPS)
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=1e-14)


def test_scaling_boxes_and_constant_together_changes_nothing():
    pred, target = random_pairs(100, seed=61)
    torch.testing.assert_close(
        nwd_loss(pred * 3, target * 3, constant=3 * 12.8), nwd_loss(pred, target)
    )


def test_identical_boxes_give_zero_with_a_zero_gradient():
    # The square root is not differentiable at W_2^2 = 0; the loss's minimum gets gradient 0.
    boxes = _tensor([[0, 0, 4, 4], [1, 1, 1, 1]]).requires_grad_(True)
    loss = nwd_loss(boxes, boxes.detach().clone())
    (grad,) = torch.autograd.grad(loss.sum(), boxes)
    assert loss.tolist() == [0.0, 0.0]
    assert (grad == 0).all()


def test_does_not_saturate_for_disjoint_boxes():
    # Every disjoint pair has IoU 0, but NWD keeps growing with the distance, with a gradient.
    target = _tensor([[0, 0, 2, 2]] * 3)
    pred = _tensor([[4, 0, 6, 2], [8, 0, 10, 2], [40, 0, 42, 2]]).requires_grad_(True)
    loss = nwd_loss(pred, target)
    (grad,) = torch.autograd.grad(loss.sum(), pred)
    assert loss[0] < loss[1] < loss[2] < 1
    assert (grad[:, 0] > 0).all()
