"""Alpha-IoU (arXiv 2110.13675): 1 - IoU^alpha, by hand, against the float64 reference and, for
alpha = 1, against torchvision's box_iou."""

import pytest
import torch
import zoo_references as ref
from box_samples import random_pairs
from torchvision.ops import box_iou

from focal_eiou_d2.layers.alpha_iou import alpha_iou_loss

TINY_EPS = 1e-300


def _tensor(rows):
    return torch.tensor(rows, dtype=torch.float64)


# By hand, alpha = 3: half_inside pred (0,0,2,4) in (0,0,4,4) has IoU 8/16, so 1 - 1/8 = 7/8;
# quarter_inside (0,0,2,2) in (0,0,4,4) has IoU 1/4: 1 - 1/64 = 63/64; with alpha = 1/2 the
# latter is 1 - sqrt(1/4) = 1/2; a disjoint pair has IoU 0: loss 1 for every alpha.
HAND_CASES = [
    ([0, 0, 2, 4], [0, 0, 4, 4], 3.0, 7 / 8),
    ([0, 0, 2, 2], [0, 0, 4, 4], 3.0, 63 / 64),
    ([0, 0, 2, 2], [0, 0, 4, 4], 0.5, 0.5),
    ([4, 0, 6, 2], [0, 0, 2, 2], 3.0, 1.0),
    ([4, 0, 6, 2], [0, 0, 2, 2], 0.5, 1.0),
]


@pytest.mark.parametrize("pred,target,alpha,expected", HAND_CASES)
def test_by_hand(pred, target, alpha, expected):
    loss = alpha_iou_loss(_tensor(pred), _tensor(target), alpha=alpha)
    assert loss.item() == pytest.approx(expected, abs=1e-7)
    assert ref.alpha_iou(pred, target, alpha) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("alpha", [3.0, 0.5, 2.0, 1.0])
def test_matches_reference(alpha):
    pred, target = random_pairs(300, seed=30)
    expected = _tensor(ref.per_pair(ref.alpha_iou, pred, target, alpha=alpha))
    torch.testing.assert_close(alpha_iou_loss(pred, target, alpha=alpha, eps=TINY_EPS), expected)


def test_alpha_one_is_the_iou_loss():
    pred, target = random_pairs(500, seed=31)
    pred.requires_grad_(True)
    loss = alpha_iou_loss(pred, target, alpha=1.0, eps=TINY_EPS)
    expected = 1 - torch.diag(box_iou(pred, target))
    torch.testing.assert_close(loss, expected, rtol=0, atol=1e-12)
    grads = [torch.autograd.grad(value.sum(), pred)[0] for value in (loss, expected)]
    torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=1e-12)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 3.0])
def test_disjoint_pairs_get_a_zero_finite_gradient(alpha):
    # For alpha < 1 the derivative of IoU^alpha is infinite at IoU = 0.
    pred = _tensor([[4, 0, 6, 2], [2, 0, 4, 2]]).requires_grad_(True)  # disjoint, touching
    target = _tensor([[0, 0, 2, 2], [0, 0, 2, 2]]).requires_grad_(True)
    loss = alpha_iou_loss(pred, target, alpha=alpha)
    grads = torch.autograd.grad(loss.sum(), [pred, target])
    assert loss.tolist() == [1.0, 1.0]
    assert all(torch.isfinite(grad).all() for grad in grads)
    assert all((grad[0] == 0).all() for grad in grads)


def test_larger_alpha_raises_the_loss_of_a_good_box():
    # 1 - IoU^alpha grows with alpha for 0 < IoU < 1: the up-weighting of high-IoU objects.
    pred, target = _tensor([[0, 0, 2, 4]]), _tensor([[0, 0, 4, 4]])
    values = [alpha_iou_loss(pred, target, alpha=a).item() for a in (0.5, 1.0, 2.0, 3.0)]
    assert values == sorted(values)
