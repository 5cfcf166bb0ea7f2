import math

import pytest
import torch

from focal_eiou_d2.simulation import SimulationConfig, pairs_of
from focal_eiou_d2.simulation.boxes import AlignedIoU
from focal_eiou_d2.simulation.setups import CENTRE, SCALES_7, parse_region

CENTRE_64 = torch.tensor(CENTRE, dtype=torch.float64)


def pairs(**options):
    return pairs_of(SimulationConfig(dtype="float64", **options))


def offsets(**options):
    """Centre points relative to (10, 10), one row per point."""
    anchors = pairs(**options).anchors
    return (anchors[:, :2] - CENTRE_64).unique(dim=0)


@pytest.mark.parametrize(
    "options, count",
    [
        (dict(setup="setup1"), 343_000),
        (dict(setup="setup2"), 2_700),
        (dict(reading="diou", setup="setup1"), 1_715_000),
    ],
)
def test_pair_counts_match_the_papers(options, count):
    assert len(pairs_of(SimulationConfig(**options))) == count


def test_literal_setup1_samples_the_20x20_box_around_the_targets():
    offset = offsets(reading="literal", setup="setup1")
    assert len(offset) == 1000
    assert offset.abs().max() <= 10  # the box [0, 20]^2, centred on the targets at (10, 10)
    assert offset.abs().max() > 9.5  # fills it, not a smaller region
    # uniform over the box: about a quarter of the points within half of it in both axes
    inner = (offset.abs() < 5).all(dim=1).double().mean()
    assert math.isclose(float(inner), 0.25, abs_tol=0.05)


def test_literal_setup2_keeps_the_side_2_5_square():
    offset = offsets(reading="literal", setup="setup2")
    assert len(offset) == 100
    assert 0.9 * 1.25 < offset.abs().max() <= 1.25


def test_side_2_5_square_stays_an_option_for_setup1():
    offset = offsets(reading="literal", setup="setup1", points="square:2.5")
    assert 0.95 * 1.25 < offset.abs().max() <= 1.25


@pytest.mark.parametrize("setup", ["setup1", "setup2"])
def test_scaled_reading_is_the_literal_geometry_divided_by_ten(setup):
    literal, scaled = pairs(reading="literal", setup=setup), pairs(reading="scaled", setup=setup)
    for name in ("anchors", "targets"):
        big, small = getattr(literal, name), getattr(scaled, name)
        assert torch.allclose(small[:, :2] - CENTRE_64, (big[:, :2] - CENTRE_64) / 10)
        assert torch.allclose(small[:, 2:], big[:, 2:] / 10)
    # scaling preserves the IoU of every pair, so the same pairs start without overlap
    assert torch.allclose(
        AlignedIoU(literal.targets)(literal.anchors), AlignedIoU(scaled.targets)(scaled.anchors)
    )


def test_diou_reading_is_the_diou_authors_setup():
    config = SimulationConfig(reading="diou", setup="setup1", dtype="float64")
    assert (config.target_area, config.num_points, config.update) == (1.0, 5000, "diou")
    radius = (pairs_of(config).anchors[:, :2] - CENTRE_64).norm(dim=1)
    assert 0.95 * 3 < radius.max() <= 3
    # uniform over the disc: about a quarter of the points within half the radius
    assert math.isclose(float((radius < 1.5).double().mean()), 0.25, abs_tol=0.05)


@pytest.mark.parametrize("reading, area", [("literal", 100.0), ("scaled", 1.0), ("diou", 1.0)])
def test_targets_are_centred_with_the_readings_area(reading, area):
    targets = pairs(reading=reading, setup="setup1", num_points=2).targets
    assert torch.allclose(targets[:, :2], CENTRE_64)
    assert torch.allclose(targets[:, 2] * targets[:, 3], torch.full((len(targets),), area).double())
    ratios = sorted({round(r, 6) for r in (targets[:, 2] / targets[:, 3]).tolist()})
    assert ratios == sorted(round(r, 6) for r in (1 / 4, 1 / 3, 1 / 2, 1.0, 2.0, 3.0, 4.0))


def test_one_to_four_target_is_half_by_two_as_in_diou_code():
    targets = pairs(setup="setup1", num_points=1).targets
    assert torch.allclose(targets[0, 2:], torch.tensor([0.5, 2.0], dtype=torch.float64))


def test_anchor_areas_are_scales_times_target_area():
    both = pairs(reading="literal", setup="setup1", num_points=1)
    anchors, targets = both.anchors, both.targets
    relative = anchors[:, 2] * anchors[:, 3] / (targets[:, 2] * targets[:, 3])
    assert sorted({round(v, 6) for v in relative.tolist()}) == list(SCALES_7)


def test_anchors_of_a_point_share_its_centre():
    centres = pairs(setup="setup2", num_points=3).anchors[:, :2].reshape(3, -1, 2)
    assert torch.equal(centres, centres[:, :1].expand_as(centres))


def test_points_depend_on_the_seed_only():
    first = pairs_of(SimulationConfig(setup="setup2", seed=3))
    assert torch.equal(first.anchors, pairs_of(SimulationConfig(setup="setup2", seed=3)).anchors)
    assert not torch.equal(
        first.anchors, pairs_of(SimulationConfig(setup="setup2", seed=4)).anchors
    )
    assert torch.equal(first.anchors, pairs(setup="setup2", seed=3).anchors.float())


@pytest.mark.parametrize("region", ["square", "triangle:2", "disc:0", "square:nan", "disc:-3"])
def test_bad_regions_are_rejected(region):
    with pytest.raises(ValueError, match="square:SIDE or disc:RADIUS"):
        parse_region(region)
