"""MPDIoU (arXiv 2307.07662): corner distances relative to the input image's diagonal, by hand,
against the float64 reference, with per-box image sizes."""

import pytest
import torch
import zoo_references as ref
from box_samples import random_pairs

from focal_eiou_d2.layers.mpdiou import mpdiou_loss

TINY_EPS = 1e-300


def _tensor(rows):
    return torch.tensor(rows, dtype=torch.float64)


# By hand, L = 1 - IoU + (d1^2 + d2^2) / (W^2 + H^2), image_size = (H, W):
# * quarter_inside: pred (0,0,2,2), target (0,0,4,4), image (10, 20): IoU = 1/4; top-left corners
#   coincide: d1^2 = 0; bottom-right (2,2) vs (4,4): d2^2 = 4 + 4 = 8; W^2 + H^2 = 400 + 100.
#   L = 3/4 + 8/500 = 0.766.
# * disjoint: pred (4,0,6,2), target (0,0,2,2), image (8, 6): IoU = 0; d1^2 = 16 + 0,
#   d2^2 = 16 + 0; W^2 + H^2 = 36 + 64 = 100. L = 1 + 32/100 = 1.32. (Dividing by the enclosing
#   box's diagonal, 36 + 4, as some copies do, would give 1.8.)
# * right_edge_only: pred (0,0,3,2), target (0,0,2,2), image (3, 4): IoU = 4/6; d1^2 = 0,
#   d2^2 = 1; W^2 + H^2 = 25. L = 1/3 + 1/25.
HAND_CASES = {
    "quarter_inside": ([0, 0, 2, 2], [0, 0, 4, 4], (10, 20), 0.766),
    "disjoint": ([4, 0, 6, 2], [0, 0, 2, 2], (8, 6), 1.32),
    "right_edge_only": ([0, 0, 3, 2], [0, 0, 2, 2], (3, 4), 1 / 3 + 1 / 25),
}


@pytest.mark.parametrize("case", HAND_CASES)
def test_by_hand(case):
    pred, target, image_size, expected = HAND_CASES[case]
    loss = mpdiou_loss(_tensor(pred), _tensor(target), image_size)
    assert loss.item() == pytest.approx(expected, abs=1e-7)
    assert ref.mpdiou(pred, target, *image_size) == pytest.approx(expected, abs=1e-12)


def test_matches_reference():
    pred, target = random_pairs(300, seed=40)
    expected = _tensor(ref.per_pair(ref.mpdiou, pred, target, height=480, width=640))
    torch.testing.assert_close(mpdiou_loss(pred, target, (480, 640), eps=TINY_EPS), expected)


def test_per_box_image_sizes():
    pred, target = random_pairs(40, seed=41)
    sizes = torch.tensor([[480, 640], [800, 1333], [512, 512], [300, 700]] * 10)  # int64
    loss = mpdiou_loss(pred, target, sizes)
    expected = torch.cat(
        [
            mpdiou_loss(pred[i : i + 1], target[i : i + 1], tuple(sizes[i].tolist()))
            for i in range(len(pred))
        ]
    )
    assert loss.dtype == torch.float64
    torch.testing.assert_close(loss, expected, rtol=1e-14, atol=0)
    # A single (2,) tensor broadcasts like a pair.
    torch.testing.assert_close(
        mpdiou_loss(pred, target, torch.tensor([480.0, 640.0])),
        mpdiou_loss(pred, target, (480, 640)),
    )


def test_the_penalty_shrinks_with_the_image():
    # Same boxes, larger image: smaller corner penalty, same IoU term.
    pred, target = _tensor([[4, 0, 6, 2]]), _tensor([[0, 0, 2, 2]])
    small, large = (mpdiou_loss(pred, target, size).item() for size in [(8, 6), (80, 60)])
    assert small == pytest.approx(1.32) and large == pytest.approx(1.0032)


@pytest.mark.parametrize("bad", [(0, 640), (480, -1), (480, float("inf")), (480,), (1, 2, 3)])
def test_rejects_a_bad_image_size(bad):
    boxes = _tensor([[0, 0, 4, 4]])
    with pytest.raises(ValueError, match="image_size"):
        mpdiou_loss(boxes, boxes, bad)


@pytest.mark.parametrize("shape", [(), (3,), (4, 3)])
def test_rejects_a_badly_shaped_image_size_tensor(shape):
    boxes = _tensor([[0, 0, 4, 4]])
    with pytest.raises(ValueError, match="image_size"):
        mpdiou_loss(boxes, boxes, torch.ones(shape))
