"""Inner-IoU (arXiv 2311.02877): L_base + IoU - IoU_inner, by hand, against the float64
reference for every base, and equal to its base with ratio 1."""

import pytest
import torch
import zoo_references as ref
from box_samples import random_pairs
from torchvision.ops import complete_box_iou_loss, distance_box_iou_loss, generalized_box_iou_loss

from focal_eiou_d2.layers.inner_iou import inner_iou_loss, scale_boxes
from focal_eiou_d2.layers.iou_losses import eiou_loss, iou_loss
from focal_eiou_d2.layers.siou import siou_loss

BASES = ["iou", "giou", "diou", "ciou", "eiou", "siou"]
TINY_EPS = 1e-300


def _tensor(rows):
    return torch.tensor(rows, dtype=torch.float64)


# By hand:
# * half_inside, ratio 1/2: pred (0,0,2,4), target (0,0,4,4); IoU = 1/2. Inner pred: centre (1,2),
#   sides (1,2): (0.5,1,1.5,3); inner target: centre (2,2), sides (2,2): (1,1,3,3). Intersection
#   x [1,1.5] y [1,3] = 0.5 * 2 = 1; union 2 + 4 - 1 = 5: IoU_inner = 1/5.
#   Base iou: 1/2 + 1/2 - 1/5 = 0.8. Base diou: DIoU = 1/2 + 1/32 (test_iou_losses.py), so
#   0.53125 + 1/2 - 1/5 = 0.83125.
# * disjoint, ratio 5/2: pred (4,0,6,2), target (0,0,2,2); IoU = 0. Inner pred: centre (5,1),
#   sides 5: (2.5,-1.5,7.5,3.5); inner target: (-1.5,-1.5,3.5,3.5). Intersection x [2.5,3.5]
#   y [-1.5,3.5] = 1 * 5 = 5; union 25 + 25 - 5 = 45: IoU_inner = 1/9. Base giou: GIoU = 1 + 4/12
#   (C = (0,0,6,2), |C| = 12, union 8), so 1 + 1/3 + 0 - 1/9.
HAND_CASES = {
    "half_inside_iou": ([0, 0, 2, 4], [0, 0, 4, 4], 0.5, "iou", 0.8),
    "half_inside_diou": ([0, 0, 2, 4], [0, 0, 4, 4], 0.5, "diou", 0.83125),
    "disjoint_giou": ([4, 0, 6, 2], [0, 0, 2, 2], 2.5, "giou", 1 + 1 / 3 - 1 / 9),
}


@pytest.mark.parametrize("case", HAND_CASES)
def test_by_hand(case):
    pred, target, ratio, base, expected = HAND_CASES[case]
    loss = inner_iou_loss(_tensor(pred), _tensor(target), ratio=ratio, base=base)
    assert loss.item() == pytest.approx(expected, abs=1e-7)
    assert ref.inner_iou(pred, target, ratio, base) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("ratio", [0.7, 1.3])
@pytest.mark.parametrize("base", BASES)
def test_matches_reference(base, ratio):
    pred, target = random_pairs(200, seed=50)
    expected = _tensor(ref.per_pair(ref.inner_iou, pred, target, ratio=ratio, base=base))
    loss = inner_iou_loss(pred, target, ratio=ratio, base=base, eps=TINY_EPS)
    torch.testing.assert_close(loss, expected, rtol=1e-10, atol=1e-12)


BASE_REFERENCES = {
    "iou": iou_loss,
    "giou": generalized_box_iou_loss,
    "diou": distance_box_iou_loss,
    "ciou": complete_box_iou_loss,
    "eiou": eiou_loss,
    "siou": siou_loss,
}


@pytest.mark.parametrize("base", BASES)
def test_ratio_one_is_the_base(base):
    pred, target = random_pairs(300, seed=51)
    pred.requires_grad_(True)
    loss = inner_iou_loss(pred, target, ratio=1.0, base=base)
    expected = BASE_REFERENCES[base](pred, target)
    torch.testing.assert_close(loss, expected, rtol=0, atol=1e-12)
    grads = [torch.autograd.grad(value.sum(), pred)[0] for value in (loss, expected)]
    torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=1e-12)


def test_scale_boxes_keeps_centres_and_scales_sides():
    boxes = _tensor([[0, 0, 2, 4], [3, 0, 1, 2]])  # the second one inverted
    # Centres (1,2), (2,1); sides (2,4) -> (1,2) and (-2,2) -> (-1,1): still inverted.
    expected = _tensor([[0.5, 1, 1.5, 3], [2.5, 0.5, 1.5, 1.5]])
    torch.testing.assert_close(scale_boxes(boxes, 0.5), expected)


def test_a_ratio_above_one_gives_disjoint_boxes_an_iou_gradient():
    # The point of ratio > 1: the inner IoU of nearby disjoint boxes is > 0 and has a gradient.
    pred = _tensor([[4, 0, 6, 2]]).requires_grad_(True)
    target = _tensor([[0, 0, 2, 2]])
    (plain,) = torch.autograd.grad(inner_iou_loss(pred, target, ratio=1.0).sum(), pred)
    (wide,) = torch.autograd.grad(inner_iou_loss(pred, target, ratio=2.5).sum(), pred)
    assert (plain == 0).all() and (wide != 0).any()


@pytest.mark.parametrize("bad", ["GIoU", "wiou_v1", "nwd", ""])
def test_rejects_an_unknown_base(bad):
    boxes = _tensor([[0, 0, 4, 4]])
    with pytest.raises(ValueError, match="base"):
        inner_iou_loss(boxes, boxes, base=bad)
