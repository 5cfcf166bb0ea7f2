import math

import pytest
import torch
from box_samples import head_inputs, random_pairs
from torchvision.ops import (
    box_iou,
    complete_box_iou_loss,
    distance_box_iou_loss,
    generalized_box_iou_loss,
)

from focal_eiou_d2.layers import (
    BOX_LOSSES,
    ciou_loss,
    diou_loss,
    eiou_loss,
    giou_loss,
    iou_loss,
)

# Same eps placement as torchvision: union + eps, |C| + eps, c^2 + eps, alpha's denominator + eps.
# CIoU clamps heights to >= eps in atan(w / h), a no-op for these boxes.
TORCHVISION_REFERENCES = [
    (giou_loss, generalized_box_iou_loss),
    (diou_loss, distance_box_iou_loss),
    (ciou_loss, complete_box_iou_loss),
]


def _value_and_grads(loss_fn, pred, target, **kwargs):
    pred = pred.clone().requires_grad_(True)
    target = target.clone().requires_grad_(True)
    loss = loss_fn(pred, target, **kwargs)
    pred_grad, target_grad = torch.autograd.grad(loss.sum(), [pred, target])
    return loss.detach(), pred_grad, target_grad


def _assert_same(ours, reference):
    for mine, theirs in zip(ours, reference, strict=True):
        torch.testing.assert_close(mine, theirs, rtol=0, atol=1e-10)


@pytest.mark.parametrize("ours,reference", TORCHVISION_REFERENCES)
def test_matches_torchvision_in_value_and_gradient(ours, reference):
    pred, target = random_pairs(4000, seed=0)
    assert (1 - iou_loss(pred, target) == 0).any(), "the sample should include disjoint pairs"
    _assert_same(_value_and_grads(ours, pred, target), _value_and_grads(reference, pred, target))


@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("ours,reference", TORCHVISION_REFERENCES)
def test_reductions_match_torchvision(ours, reference, reduction):
    pred, target = random_pairs(200, seed=1)
    torch.testing.assert_close(
        ours(pred, target, reduction=reduction),
        reference(pred, target, reduction=reduction),
        rtol=1e-12,
        atol=0,
    )


def test_iou_loss_matches_torchvision_box_iou():
    # box_iou divides by the bare union; eps must be > 0, and 1e-300 leaves these float64 unions
    # (over 25 px^2) unchanged.
    pred, target = random_pairs(2000, seed=2)
    ours = _value_and_grads(iou_loss, pred, target, eps=1e-300)
    reference = _value_and_grads(lambda a, b: 1 - torch.diag(box_iou(a, b)), pred, target)
    _assert_same(ours, reference)


def _ciou_aspect_term(pred_wh, target_wh, iou):
    # Eq. 5: v = 4 / pi^2 * (atan(w_gt / h_gt) - atan(w / h))^2, alpha = v / ((1 - IoU) + v).
    v = (
        4
        / math.pi**2
        * (math.atan(target_wh[0] / target_wh[1]) - math.atan(pred_wh[0] / pred_wh[1])) ** 2
    )
    return v / (1 - iou + v) * v


# Hand derivations, pred vs target (Eq. 3, 4, 5, 7):
# * half_inside: pred (0,0,2,4) in target (0,0,4,4). IoU = 8/16 = 1/2; C = target, |C| = union = 16;
#   w_c = h_c = 4, c^2 = 32; centres (1,2), (2,2): rho^2 = 1. GIoU = 1/2, DIoU = 1/2 + 1/32,
#   EIoU = 1/2 + 1/32 + (2-4)^2/16 + 0 = 0.78125.
# * quarter_inside: pred (0,0,2,2) in target (0,0,4,4). IoU = 4/16; |C| = union = 16; c^2 = 32;
#   centres (1,1), (2,2): rho^2 = 2. GIoU = 3/4, DIoU = 3/4 + 2/32 = 0.8125 = CIoU (both square,
#   v = 0), EIoU = 0.8125 + 4/16 + 4/16 = 1.3125.
# * disjoint: pred (4,0,6,2), target (0,0,2,2). IoU = 0; C = (0,0,6,2), |C| = 12, union = 8;
#   c^2 = 36 + 4 = 40; centres (5,1), (1,1): rho^2 = 16. GIoU = 1 + 4/12, DIoU = CIoU (v = 0)
#   = 1 + 16/40 = 1.4, EIoU = 1.4 (equal sides).
HAND_CASES = {
    "half_inside": (
        [0, 0, 2, 4],
        [0, 0, 4, 4],
        {
            "iou": 0.5,
            "giou": 0.5,
            "diou": 0.53125,
            "ciou": 0.53125 + _ciou_aspect_term((2, 4), (4, 4), 0.5),
            "eiou": 0.78125,
        },
    ),
    "quarter_inside": (
        [0, 0, 2, 2],
        [0, 0, 4, 4],
        {"iou": 0.75, "giou": 0.75, "diou": 0.8125, "ciou": 0.8125, "eiou": 1.3125},
    ),
    "disjoint": (
        [4, 0, 6, 2],
        [0, 0, 2, 2],
        {"iou": 1.0, "giou": 1 + 4 / 12, "diou": 1.4, "ciou": 1.4, "eiou": 1.4},
    ),
}


@pytest.mark.parametrize("case", HAND_CASES)
@pytest.mark.parametrize("name", ["iou", "giou", "diou", "ciou", "eiou"])
def test_hand_derived_values(case, name):
    pred, target, expected = HAND_CASES[case]
    loss = BOX_LOSSES[name].fn(
        torch.tensor(pred, dtype=torch.float64), torch.tensor(target, dtype=torch.float64)
    )
    assert loss.item() == pytest.approx(expected[name], abs=1e-7)


@pytest.mark.parametrize("name", list(BOX_LOSSES))
def test_identical_boxes_give_zero(name):
    boxes = torch.tensor([[0.0, 0.0, 4.0, 4.0], [10.0, 20.0, 310.0, 90.0]], requires_grad=True)
    loss = BOX_LOSSES[name].fn(boxes, boxes.detach().clone(), **head_inputs(name))
    (grad,) = torch.autograd.grad(loss.sum(), boxes)
    # 1 - IoU = eps / (area + eps) <= 1e-7 / 16.
    torch.testing.assert_close(loss, torch.zeros_like(loss), rtol=0, atol=1e-7)
    assert torch.isfinite(grad).all()


def test_inverted_box_has_zero_extent():
    # pred (3,0,1,2) has x2 < x1: its width is 0 for the areas and the width term, while its centre
    # (2,1) and the enclosing box (x from min(3,0) = 0 to max(1,4) = 4) use the raw coordinates.
    # Against target (0,0,4,4): IoU = 0, w_c = h_c = 4, rho^2 = (2-2)^2 + (1-2)^2 = 1, so
    # EIoU = 1 + 1/32 + (0-4)^2/16 + (2-4)^2/16 = 2.28125 and GIoU = 1 + (16 - 16)/16 = 1.
    pred = torch.tensor([3.0, 0.0, 1.0, 2.0], dtype=torch.float64)
    target = torch.tensor([0.0, 0.0, 4.0, 4.0], dtype=torch.float64)
    assert iou_loss(pred, target).item() == 1.0
    assert giou_loss(pred, target).item() == pytest.approx(1.0, abs=1e-12)
    assert eiou_loss(pred, target).item() == pytest.approx(2.28125, abs=1e-7)


@pytest.mark.parametrize("name", list(BOX_LOSSES))
def test_inverted_boxes_are_finite(name):
    pred = torch.tensor(
        [[3.0, 0.0, 1.0, 2.0], [5.0, 5.0, 1.0, 1.0], [2.0, 6.0, 3.0, 1.0]], requires_grad=True
    )
    target = torch.tensor(
        [[0.0, 0.0, 4.0, 4.0], [4.0, 4.0, 2.0, 2.0], [2.0, 6.0, 3.0, 1.0]], requires_grad=True
    )
    loss = BOX_LOSSES[name].fn(pred, target, **head_inputs(name))
    grads = torch.autograd.grad(loss.sum(), [pred, target])
    assert torch.isfinite(loss).all() and (loss >= 0).all()
    assert all(torch.isfinite(grad).all() for grad in grads)


def test_zero_area_box_has_zero_iou_with_itself():
    # Documented choice: IoU = intersection / (union + eps) = 0 / eps for a zero-area box.
    point = torch.tensor([[2.0, 3.0, 2.0, 3.0], [1.0, 1.0, 1.0, 5.0]])
    torch.testing.assert_close(eiou_loss(point, point), torch.ones(2))


def test_ciou_alpha_carries_no_gradient():
    # Same boxes, alpha frozen by hand: gradients must agree with ciou_loss.
    pred = torch.tensor([[0.3, 0.2, 2.1, 3.9]], dtype=torch.float64, requires_grad=True)
    target = torch.tensor([[0.1, 0.4, 4.0, 4.2]], dtype=torch.float64)
    (ciou_grad,) = torch.autograd.grad(ciou_loss(pred, target).sum(), pred)

    def v_of(boxes):
        return (
            4
            / math.pi**2
            * (
                torch.atan((target[:, 2] - target[:, 0]) / (target[:, 3] - target[:, 1]))
                - torch.atan((boxes[:, 2] - boxes[:, 0]) / (boxes[:, 3] - boxes[:, 1]))
            )
            ** 2
        )

    with torch.no_grad():
        iou = 1 - iou_loss(pred, target)
        alpha = v_of(pred) / (1 - iou + v_of(pred) + 1e-7)
    frozen = diou_loss(pred, target) + alpha * v_of(pred)
    (frozen_grad,) = torch.autograd.grad(frozen.sum(), pred)
    torch.testing.assert_close(ciou_grad, frozen_grad, rtol=1e-12, atol=1e-14)
