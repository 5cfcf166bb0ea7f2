import math

import pytest
import torch

from focal_eiou_d2.simulation.setups import (
    CENTRE,
    DISC_RADIUS,
    SCALES_7,
    SETUPS,
    SQUARE_SIDE,
    build_pairs,
)


@pytest.mark.parametrize(
    "setup, pairs", [("setup1", 343_000), ("setup2", 2_700), ("diou", 1_715_000)]
)
def test_pair_counts_match_the_papers(setup, pairs):
    assert SETUPS[setup].num_pairs() == pairs


def test_setup1_is_built_at_full_size():
    assert len(build_pairs("setup1")) == 343_000


@pytest.mark.parametrize("scale, area", [("unit", 1.0), ("literal", 100.0)])
def test_targets_are_centred_with_the_scales_area(scale, area):
    pairs = build_pairs("setup1", scale=scale, num_points=2, dtype=torch.float64)
    targets = pairs.targets
    assert torch.allclose(targets[:, :2], torch.tensor(CENTRE, dtype=torch.float64))
    assert torch.allclose(
        targets[:, 2] * targets[:, 3], torch.full((len(pairs),), area, dtype=torch.float64)
    )
    ratios = sorted({round(r, 6) for r in (targets[:, 2] / targets[:, 3]).tolist()})
    assert ratios == sorted(round(r, 6) for r in (1 / 4, 1 / 3, 1 / 2, 1.0, 2.0, 3.0, 4.0))


def test_one_to_four_target_is_half_by_two_as_in_diou_code():
    targets = build_pairs("setup1", num_points=1, dtype=torch.float64).targets
    assert torch.allclose(targets[0, 2:], torch.tensor([0.5, 2.0], dtype=torch.float64))


def test_anchor_areas_are_scales_times_target_area():
    pairs = build_pairs("setup1", num_points=1, dtype=torch.float64)
    relative = (
        pairs.anchors[:, 2] * pairs.anchors[:, 3] / (pairs.targets[:, 2] * pairs.targets[:, 3])
    )
    assert sorted({round(v, 6) for v in relative.tolist()}) == list(SCALES_7)


def test_anchors_of_a_point_share_its_centre():
    pairs = build_pairs("setup2", num_points=3)
    centres = pairs.anchors[:, :2].reshape(3, -1, 2)
    assert torch.equal(centres, centres[:, :1].expand_as(centres))


@pytest.mark.parametrize("setup", ["setup1", "setup2"])
def test_paper_setups_default_to_the_square(setup):
    centres = build_pairs(setup, dtype=torch.float64).anchors[:, :2]
    offset = (centres - torch.tensor(CENTRE, dtype=torch.float64)).abs()
    assert offset.max() <= SQUARE_SIDE / 2
    assert offset.max() > 0.9 * SQUARE_SIDE / 2  # fills the square, not a smaller region


def test_disc_region_has_radius_three():
    centres = build_pairs("setup1", points="disc", dtype=torch.float64).anchors[:, :2]
    radius = (centres - torch.tensor(CENTRE, dtype=torch.float64)).norm(dim=1)
    assert radius.max() <= DISC_RADIUS
    assert radius.max() > 0.95 * DISC_RADIUS
    # uniform over the area: about a quarter of the points within half the radius
    assert math.isclose(float((radius < DISC_RADIUS / 2).double().mean()), 0.25, abs_tol=0.05)


def test_points_depend_on_the_seed_only():
    first = build_pairs("setup2", seed=3)
    assert torch.equal(first.anchors, build_pairs("setup2", seed=3).anchors)
    assert not torch.equal(first.anchors, build_pairs("setup2", seed=4).anchors)
    as_double = build_pairs("setup2", seed=3, dtype=torch.float64).anchors
    assert torch.equal(first.anchors, as_double.float())


def test_unknown_region_is_rejected():
    with pytest.raises(ValueError):
        build_pairs("setup2", points="triangle")
