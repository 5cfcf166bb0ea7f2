"""SIoU (arXiv 2205.12740) and Shape-IoU (arXiv 2312.17663): hand-derived values, the float64
references of zoo_references.py, the x/y symmetry of SIoU and Shape-IoU's scale-0 identity."""

import math

import pytest
import torch
import zoo_references as ref
from box_samples import random_pairs
from torchvision.ops import distance_box_iou_loss

from focal_eiou_d2.layers.shape_iou import shape_iou_loss, shape_weights
from focal_eiou_d2.layers.siou import siou_loss, siou_shape_cost

TINY_EPS = 1e-300  # eps must be > 0; this one leaves float64 pixel-box values unchanged


def _tensor(rows):
    return torch.tensor(rows, dtype=torch.float64)


# SIoU by hand, pred vs target; L = 1 - IoU + (Delta + Omega) / 2.
# * quarter_inside: pred (0,0,2,2) in target (0,0,4,4). IoU = 4/16. Centres (1,1) -> (2,2):
#   dx = dy = 1, sigma = sqrt(2), x = 1/sqrt(2), arcsin x = pi/4, Lambda = 1 - 2 sin^2(0) = 1,
#   gamma = 1. C_w = C_h = 4: rho_x = rho_y = 1/16, Delta = 2 (1 - e^(-1/16)).
#   omega_w = omega_h = |2 - 4| / 4 = 1/2: Omega = 2 (1 - e^(-1/2))^4.
#   L = 3/4 + (1 - e^(-1/16)) + (1 - e^(-1/2))^4 = 0.834556...
# * disjoint_along_x: pred (4,0,6,2), target (0,0,2,2). IoU = 0. dx = -4, dy = 0: x = 0,
#   Lambda = 1 - 2 sin^2(-pi/4) = 0, gamma = 2. C_w = 6, C_h = 2: rho_x = 16/36 = 4/9, rho_y = 0,
#   Delta = 1 - e^(-8/9). Same sides: Omega = 0. L = 1 + (1 - e^(-8/9)) / 2.
# * disjoint_3_4_5: pred (3,4,5,6), target (0,0,2,2). IoU = 0. Centres (4,5) -> (1,1): dx = -3,
#   dy = -4, sigma = 5, x = 4/5: Lambda = sin(2 alpha) = 2 (4/5)(3/5) = 24/25, gamma = 26/25.
#   C_w = 5, C_h = 6: rho_x = 9/25, rho_y = 16/36 = 4/9. Omega = 0.
#   L = 1 + ((1 - e^(-26/25 * 9/25)) + (1 - e^(-26/25 * 4/9))) / 2.
SIOU_HAND_CASES = {
    "quarter_inside": (
        [0, 0, 2, 2],
        [0, 0, 4, 4],
        0.75 + (1 - math.exp(-1 / 16)) + (1 - math.exp(-0.5)) ** 4,
    ),
    "disjoint_along_x": ([4, 0, 6, 2], [0, 0, 2, 2], 1 + (1 - math.exp(-8 / 9)) / 2),
    "disjoint_3_4_5": (
        [3, 4, 5, 6],
        [0, 0, 2, 2],
        1 + ((1 - math.exp(-26 / 25 * 9 / 25)) + (1 - math.exp(-26 / 25 * 4 / 9))) / 2,
    ),
}


@pytest.mark.parametrize("case", SIOU_HAND_CASES)
def test_siou_by_hand(case):
    pred, target, expected = SIOU_HAND_CASES[case]
    assert siou_loss(_tensor(pred), _tensor(target)).item() == pytest.approx(expected, abs=1e-7)
    assert ref.siou(pred, target) == pytest.approx(expected, abs=1e-12)


def test_angle_cost_of_the_3_4_5_case_is_sin_2_alpha():
    # The paper's form 1 - 2 sin^2(arcsin(4/5) - pi/4) equals 2 (4/5)(3/5) = 24/25.
    assert 1 - 2 * math.sin(math.asin(0.8) - math.pi / 4) ** 2 == pytest.approx(0.96, abs=1e-15)


# Shape-IoU by hand; L = 1 - IoU + hh dx^2 / c^2 + ww dy^2 / c^2 + 0.5 Omega.
# * scale_1: pred (0,0,2,2), target (0,0,4,2), s = 1: ww = 2*4/(4+2) = 4/3, hh = 2*2/6 = 2/3.
#   IoU = 4/8. dx = 1, dy = 0; enclosing (0,0,4,2): c^2 = 16 + 4 = 20; distance = (2/3)/20 = 1/30.
#   omega_w = hh |2 - 4| / 4 = 1/3, omega_h = ww * 0 = 0: Omega = (1 - e^(-1/3))^4.
#   L = 1/2 + 1/30 + (1 - e^(-1/3))^4 / 2.
# * scale_2: pred (0,1,1,3), target (0,0,1,2), s = 2: ww = 2*1/(1+4) = 2/5, hh = 8/5.
#   Intersection 1 x 1, union 2 + 2 - 1 = 3: IoU = 1/3. dx = 0, dy = -1; enclosing (0,0,1,3):
#   c^2 = 10; distance = ww * 1/10 = 1/25. Same sides: Omega = 0. L = 2/3 + 1/25.
# * scale_0: the first pair with s = 0: ww = hh = 1, distance = 1/20, omega_w = 1/2:
#   L = 1/2 + 1/20 + (1 - e^(-1/2))^4 / 2, i.e. DIoU + half SIoU's shape cost.
SHAPE_IOU_HAND_CASES = {
    "scale_1": ([0, 0, 2, 2], [0, 0, 4, 2], 1.0, 0.5 + 1 / 30 + (1 - math.exp(-1 / 3)) ** 4 / 2),
    "scale_2": ([0, 1, 1, 3], [0, 0, 1, 2], 2.0, 2 / 3 + 1 / 25),
    "scale_0": ([0, 0, 2, 2], [0, 0, 4, 2], 0.0, 0.5 + 1 / 20 + (1 - math.exp(-0.5)) ** 4 / 2),
}


@pytest.mark.parametrize("case", SHAPE_IOU_HAND_CASES)
def test_shape_iou_by_hand(case):
    pred, target, scale, expected = SHAPE_IOU_HAND_CASES[case]
    loss = shape_iou_loss(_tensor(pred), _tensor(target), scale=scale)
    assert loss.item() == pytest.approx(expected, abs=1e-7)
    assert ref.shape_iou(pred, target, scale=scale) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("theta", [4.0, 1.0, 2.5, 6.0])
def test_siou_matches_reference(theta):
    pred, target = random_pairs(300, seed=10)
    loss = siou_loss(pred, target, theta=theta, eps=TINY_EPS)
    expected = _tensor(ref.per_pair(ref.siou, pred, target, theta=theta))
    torch.testing.assert_close(loss, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("scale,theta", [(0.0, 4.0), (0.5, 4.0), (1.5, 2.0), (3.0, 6.0)])
def test_shape_iou_matches_reference(scale, theta):
    pred, target = random_pairs(300, seed=11)
    loss = shape_iou_loss(pred, target, scale=scale, theta=theta, eps=TINY_EPS)
    expected = _tensor(ref.per_pair(ref.shape_iou, pred, target, scale=scale, theta=theta))
    torch.testing.assert_close(loss, expected, rtol=1e-10, atol=1e-12)


def _swap_xy(boxes):
    return boxes[..., [1, 0, 3, 2]]


@pytest.mark.parametrize("theta", [4.0, 2.0])
def test_siou_is_symmetric_under_swapping_x_and_y(theta):
    pred, target = random_pairs(200, seed=12)
    pred.requires_grad_(True)
    loss = siou_loss(pred, target, theta=theta)
    swapped_pred = _swap_xy(pred.detach()).requires_grad_(True)
    swapped = siou_loss(swapped_pred, _swap_xy(target), theta=theta)
    torch.testing.assert_close(loss, swapped, rtol=1e-12, atol=1e-14)
    (grad,) = torch.autograd.grad(loss.sum(), pred)
    (swapped_grad,) = torch.autograd.grad(swapped.sum(), swapped_pred)
    torch.testing.assert_close(grad, _swap_xy(swapped_grad), rtol=1e-10, atol=1e-14)


def test_shape_iou_with_scale_zero_is_diou_plus_half_the_siou_shape_cost():
    pred, target = random_pairs(300, seed=13)
    pred.requires_grad_(True)
    loss = shape_iou_loss(pred, target, scale=0.0)
    # DIoU from torchvision (same eps placement: union + eps, c^2 + eps), the shape cost from
    # the module's SIoU part, on widths and heights computed here.
    wh1, wh2 = pred[:, 2:] - pred[:, :2], target[:, 2:] - target[:, :2]
    expected = distance_box_iou_loss(pred, target) + 0.5 * siou_shape_cost(
        wh1[:, 0], wh1[:, 1], wh2[:, 0], wh2[:, 1]
    )
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=1e-14)
    grads = [torch.autograd.grad(value.sum(), pred)[0] for value in (loss, expected)]
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-10, atol=1e-14)
    # And the shape cost itself against the plain-Python one.
    shape = siou_shape_cost(wh1[:, 0], wh1[:, 1], wh2[:, 0], wh2[:, 1], eps=TINY_EPS)
    torch.testing.assert_close(
        shape.detach(), _tensor(ref.per_pair(ref.siou_shape_cost, pred.detach(), target))
    )


def test_shape_weights_sum_to_two_and_follow_the_longer_side():
    width = _tensor([4.0, 1.0, 3.0, 0.0, 0.0])
    height = _tensor([2.0, 2.0, 3.0, 5.0, 0.0])
    ww, hh = shape_weights(width, height, scale=1.0)
    torch.testing.assert_close(ww + hh, torch.full_like(ww, 2.0))
    # 2*4/6, 2*1/3, equal sides 1, a zero width counts as eps (ww ~ 0), two zero sides give 1.
    torch.testing.assert_close(ww, _tensor([4 / 3, 2 / 3, 1.0, 0.0, 1.0]), rtol=0, atol=1e-7)
