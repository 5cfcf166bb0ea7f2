"""Wise-IoU v1 and v3 (arXiv 2301.10051): hand-derived values, the float64 references, what
carries gradient (only v1's denominator and v3's outlier degree are detached), the running mean
passed in and never updated, and the momentum rule."""

import math

import pytest
import torch
import zoo_references as ref
from box_samples import generic_pairs, random_pairs
from torch.autograd import gradcheck
from torchvision.ops import box_iou

from focal_eiou_d2.layers.wise_iou import wiou_momentum, wiou_v1_loss, wiou_v3_loss

TINY_EPS = 1e-300


def _tensor(rows):
    return torch.tensor(rows, dtype=torch.float64)


# By hand, pred vs target; v1 = exp(rho^2 / (C_w^2 + C_h^2)) (1 - IoU),
# v3 = r v1 with beta = (1 - IoU) / mean, r = beta / (delta alpha^(beta - delta)), alpha = 1.9,
# delta = 3.
# * quarter_inside: pred (0,0,2,2) in target (0,0,4,4): 1 - IoU = 3/4; centres (1,1), (2,2):
#   rho^2 = 2; C = target: 16 + 16 = 32. v1 = e^(1/16) * 3/4. With mean 1/2: beta = 3/2,
#   r = 1.5 / (3 * 1.9^-1.5) = 0.5 * 1.9^1.5.
# * half_inside: pred (0,0,2,4) in target (0,0,4,4): 1 - IoU = 1/2; rho^2 = 1; c^2 = 32.
#   v1 = e^(1/32) / 2. With mean 1/4: beta = 2, r = 2 / (3 * 1.9^-1) = 3.8 / 3.
# * disjoint: pred (4,0,6,2), target (0,0,2,2): 1 - IoU = 1; rho^2 = 16; C = (0,0,6,2):
#   36 + 4 = 40. v1 = e^(2/5). With mean 1/3: beta = 3 = delta, so r = 1 and v3 = v1.
HAND_CASES = {
    "quarter_inside": (
        [0, 0, 2, 2],
        [0, 0, 4, 4],
        0.5,
        math.exp(1 / 16) * 0.75,
        0.5 * 1.9**1.5 * math.exp(1 / 16) * 0.75,
    ),
    "half_inside": (
        [0, 0, 2, 4],
        [0, 0, 4, 4],
        0.25,
        math.exp(1 / 32) / 2,
        3.8 / 3 * math.exp(1 / 32) / 2,
    ),
    "disjoint": ([4, 0, 6, 2], [0, 0, 2, 2], 1 / 3, math.exp(0.4), math.exp(0.4)),
}


@pytest.mark.parametrize("case", HAND_CASES)
def test_by_hand(case):
    pred, target, mean, v1, v3 = HAND_CASES[case]
    pred, target = _tensor(pred), _tensor(target)
    assert wiou_v1_loss(pred, target).item() == pytest.approx(v1, abs=1e-7)
    assert wiou_v3_loss(pred, target, mean).item() == pytest.approx(v3, abs=1e-7)
    mean_tensor = torch.tensor(mean, dtype=torch.float64)
    assert wiou_v3_loss(pred, target, mean_tensor).item() == pytest.approx(v3, abs=1e-7)


def test_v1_matches_reference():
    pred, target = random_pairs(300, seed=20)
    expected = _tensor(ref.per_pair(ref.wiou_v1, pred, target))
    torch.testing.assert_close(wiou_v1_loss(pred, target, eps=TINY_EPS), expected)


@pytest.mark.parametrize("mean,alpha,delta", [(0.6, 1.9, 3.0), (0.2, 1.7, 2.7), (0.9, 2.5, 4.0)])
def test_v3_matches_reference(mean, alpha, delta):
    pred, target = random_pairs(300, seed=21)
    loss = wiou_v3_loss(pred, target, mean, alpha=alpha, delta=delta, eps=TINY_EPS)
    expected = ref.per_pair(ref.wiou_v3, pred, target, iou_loss_mean=mean, alpha=alpha, delta=delta)
    torch.testing.assert_close(loss, _tensor(expected))


def _centre_distance_sq_and_diagonal_sq(pred, target):
    centre = (pred[:, :2] + pred[:, 2:]) / 2 - (target[:, :2] + target[:, 2:]) / 2
    enclosing = torch.maximum(pred[:, 2:], target[:, 2:]) - torch.minimum(
        pred[:, :2], target[:, :2]
    )
    return (centre**2).sum(dim=-1), (enclosing**2).sum(dim=-1)


def test_v1_detaches_only_the_denominator():
    pred, target = random_pairs(200, seed=22)
    pred.requires_grad_(True)
    (grad,) = torch.autograd.grad(wiou_v1_loss(pred, target, eps=TINY_EPS).sum(), pred)

    def v1_gradient(detach):
        rho_sq, diagonal_sq = _centre_distance_sq_and_diagonal_sq(pred, target)
        iou_loss = 1 - torch.diag(box_iou(pred, target))
        attention = torch.exp(rho_sq / detach["denominator"](diagonal_sq))
        return torch.autograd.grad((detach["factor"](attention) * iou_loss).sum(), pred)[0]

    keep, cut = (lambda x: x), (lambda x: x.detach())
    paper = v1_gradient({"denominator": cut, "factor": keep})
    whole_factor_detached = v1_gradient({"denominator": keep, "factor": cut})
    nothing_detached = v1_gradient({"denominator": keep, "factor": keep})
    torch.testing.assert_close(grad, paper, rtol=1e-10, atol=1e-14)
    for wrong in (whole_factor_detached, nothing_detached):
        assert not torch.allclose(grad, wrong, rtol=1e-3, atol=1e-6)


def test_v3_gradient_is_r_times_the_v1_gradient():
    pred, target = random_pairs(200, seed=23)
    pred.requires_grad_(True)
    mean = 0.7
    (grad,) = torch.autograd.grad(wiou_v3_loss(pred, target, mean).sum(), pred)
    v1 = wiou_v1_loss(pred, target)
    with torch.no_grad():
        beta = (1 - torch.diag(box_iou(pred, target))) / mean
        r = beta / (3.0 * 1.9 ** (beta - 3.0))
    (expected,) = torch.autograd.grad((r * v1).sum(), pred)
    torch.testing.assert_close(grad, expected, rtol=1e-9, atol=1e-14)


def _restored(pred, target, mean=None):
    """WIoU with the gradient of its detached parts added back, the value unchanged.

    v1 = exp(rho^2 / c^2*) L: adding (exp(rho^2 / c^2) - exp(rho^2 / c^2*)) L* restores the
    gradient through c^2. v3 = r* v1: adding (r - r*) v1* restores the gradient through beta.
    """
    rho_sq, diagonal_sq = _centre_distance_sq_and_diagonal_sq(pred, target)
    iou_loss = 1 - torch.diag(box_iou(pred, target))
    full = torch.exp(rho_sq / diagonal_sq)
    cut = torch.exp(rho_sq / diagonal_sq.detach())
    if mean is None:
        return wiou_v1_loss(pred, target, eps=TINY_EPS) + (full - cut) * iou_loss.detach()
    v1 = wiou_v1_loss(pred, target, eps=TINY_EPS)
    beta = iou_loss / mean
    r = beta / (3.0 * 1.9 ** (beta - 3.0))
    v3 = wiou_v3_loss(pred, target, mean, eps=TINY_EPS)
    return v3 + r.detach() * (full - cut) * iou_loss.detach() + (r - r.detach()) * v1.detach()


@pytest.mark.parametrize("mean", [None, 0.4])
def test_gradcheck(mean):
    assert gradcheck(lambda a, b: _restored(a, b, mean), generic_pairs())
    pred, target = random_pairs(6, seed=24)
    assert gradcheck(lambda a, b: _restored(a, b, mean), (pred.requires_grad_(), target))


def test_running_mean_is_read_not_updated_nor_differentiated():
    pred, target = random_pairs(50, seed=25)
    mean = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    loss = wiou_v3_loss(pred.requires_grad_(True), target, mean, reduction="sum")
    loss.backward()
    assert mean.item() == 0.5 and mean.grad is None
    torch.testing.assert_close(loss, wiou_v3_loss(pred, target, 0.5, reduction="sum"))


def test_float32_mean_tensor_with_float64_boxes():
    pred, target = random_pairs(20, seed=26)
    loss = wiou_v3_loss(pred, target, torch.tensor(0.25))
    assert loss.dtype == torch.float64
    torch.testing.assert_close(loss, wiou_v3_loss(pred, target, 0.25))


def test_focusing_coefficient_is_one_at_delta_and_zero_for_a_perfect_fit():
    # Identical boxes: 1 - IoU = 0, beta = 0, r = 0. The disjoint hand case has beta = delta.
    boxes = _tensor([[0, 0, 4, 4]])
    assert wiou_v3_loss(boxes, boxes, 0.5).item() == pytest.approx(0.0, abs=1e-7)
    pred, target = _tensor([[4, 0, 6, 2]]), _tensor([[0, 0, 2, 2]])
    torch.testing.assert_close(
        wiou_v3_loss(pred, target, 1 / 3, delta=3.0), wiou_v1_loss(pred, target)
    )


@pytest.mark.parametrize("num_steps", [1, 100, 890 * 34, 2.5e6])
def test_momentum_rule(num_steps):
    # m = 1 - 0.05^(1 / n): the initial value's weight (1 - m)^n falls to 5 % after n steps.
    momentum = wiou_momentum(num_steps)
    assert 0 < momentum < 1
    assert (1 - momentum) ** num_steps == pytest.approx(0.05, rel=1e-9)
    assert momentum == pytest.approx(1 - 0.05 ** (1 / num_steps), rel=1e-9)


def test_momentum_rule_rejects_bad_arguments():
    with pytest.raises(ValueError, match="num_steps"):
        wiou_momentum(0)
    with pytest.raises(ValueError, match="residual"):
        wiou_momentum(10, residual=1.0)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_v3_rejects_a_bad_mean(bad):
    boxes = _tensor([[0, 0, 4, 4]])
    with pytest.raises(ValueError, match="iou_loss_mean"):
        wiou_v3_loss(boxes, boxes, bad)


def test_v3_rejects_a_mean_tensor_with_dimensions():
    boxes = _tensor([[0, 0, 4, 4]])
    with pytest.raises(ValueError, match="iou_loss_mean"):
        wiou_v3_loss(boxes, boxes, torch.tensor([0.5]))
