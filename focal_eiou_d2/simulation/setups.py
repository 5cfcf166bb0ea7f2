"""Anchor-target pairs of the simulation setups (Sec. 5.1 of the paper; DIoU's original).

Every target is centred on (10, 10). Aspect ratios are w:h, so ratio r and area A give
w = sqrt(A * r), h = sqrt(A / r) (1:4 with area 1 is 0.5 x 2, as in the DIoU authors' code). An
anchor's area is its scale times its target's area (DIoU's convention; the paper's scales 50 ...
200 relative to the target "scale 100"). Pairs are ordered point-major: (point, target, anchor
scale, anchor ratio), like the DIoU authors' loops.
"""

from dataclasses import dataclass
from typing import Optional

import torch

CENTRE = (10.0, 10.0)
SQUARE_SIDE = 2.5  # the paper's region of setup 2
DISC_RADIUS = 3.0  # the DIoU authors' region
LENGTH_UNIT = {"unit": 1.0, "literal": 10.0}  # literal: target area 100 = (10 length units)^2

RATIOS_7 = (1 / 4, 1 / 3, 1 / 2, 1.0, 2.0, 3.0, 4.0)
RATIOS_3 = (1 / 3, 1.0, 3.0)
SCALES_7 = (0.5, 0.67, 0.75, 1.0, 1.33, 1.5, 2.0)
SCALES_3 = (0.5, 1.0, 1.5)


@dataclass(frozen=True)
class SetupSpec:
    """One simulation setup.

    Attributes:
        num_points: number of random centre points.
        target_ratios: aspect ratios (w:h) of the targets, all of the same area.
        anchor_scales: anchor areas relative to the target's area.
        anchor_ratios: aspect ratios (w:h) of the anchors.
        default_points: centre region used when none is chosen.
        description: one line for --help and results.json.
    """

    num_points: int
    target_ratios: tuple[float, ...]
    anchor_scales: tuple[float, ...]
    anchor_ratios: tuple[float, ...]
    default_points: str
    description: str

    def num_pairs(self, num_points: Optional[int] = None) -> int:
        """Number of anchor-target pairs for ``num_points`` points (default: the setup's)."""
        points = self.num_points if num_points is None else num_points
        per_point = len(self.target_ratios) * len(self.anchor_scales) * len(self.anchor_ratios)
        return points * per_point


SETUPS = {
    "setup1": SetupSpec(
        1000, RATIOS_7, SCALES_7, RATIOS_7, "square", "paper setup 1: 1000 points x 7 x 7 x 7"
    ),
    "setup2": SetupSpec(
        100, RATIOS_3, SCALES_3, RATIOS_3, "square", "paper setup 2: 100 points x 3 x 3 x 3"
    ),
    "diou": SetupSpec(
        5000, RATIOS_7, SCALES_7, RATIOS_7, "disc", "DIoU authors: 5000 points x 7 x 7 x 7"
    ),
}


@dataclass
class PairSet:
    """Anchor-target pairs.

    Attributes:
        anchors (Tensor[N, 4]): initial boxes B^0, (x, y, w, h).
        targets (Tensor[N, 4]): targets B_gt, (x, y, w, h).
    """

    anchors: torch.Tensor
    targets: torch.Tensor

    def __len__(self) -> int:
        return self.anchors.shape[0]


def sample_centres(region: str, num: int, generator: torch.Generator) -> torch.Tensor:
    """Draw centre points uniformly in a region around (10, 10).

    Args:
        region (str): "square" (side 2.5) or "disc" (radius 3).
        num (int): number of points.
        generator (torch.Generator): CPU generator, so points depend on the seed only.

    Returns:
        Tensor[num, 2]: float64 (x, y).
    """
    uniform = torch.rand(num, 2, generator=generator, dtype=torch.float64)
    centre = torch.tensor(CENTRE, dtype=torch.float64)
    if region == "square":
        return centre + (uniform - 0.5) * SQUARE_SIDE
    if region == "disc":
        radius = DISC_RADIUS * uniform[:, 0].sqrt()  # sqrt: uniform density over the disc
        angle = 2 * torch.pi * uniform[:, 1]
        return centre + torch.stack([radius * angle.cos(), radius * angle.sin()], dim=1)
    raise ValueError(f"Unknown centre region {region!r}; use 'square' or 'disc'")


def sizes_from_ratios(areas: torch.Tensor, ratios: tuple[float, ...]) -> torch.Tensor:
    """Widths and heights of boxes of given areas and aspect ratios (w:h).

    Args:
        areas (Tensor[...]): box areas.
        ratios (tuple[float]): R aspect ratios w / h.

    Returns:
        Tensor[..., R, 2]: (w, h) with w * h = area and w / h = ratio.
    """
    ratio = torch.tensor(ratios, dtype=areas.dtype)
    area = areas.unsqueeze(-1)
    return torch.stack([(area * ratio).sqrt(), (area / ratio).sqrt()], dim=-1)


def build_pairs(
    setup: str,
    scale: str = "unit",
    points: Optional[str] = None,
    num_points: Optional[int] = None,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: str = "cpu",
) -> PairSet:
    """Build every anchor-target pair of a setup (vectorized; generated in float64).

    Args:
        setup (str): a key of :data:`SETUPS`.
        scale (str): "unit" or "literal" (a key of :data:`LENGTH_UNIT`).
        points (str | None): "square" | "disc"; None uses the setup's default.
        num_points (int | None): overrides the setup's number of centre points.
        seed (int): seed of the centre points.
        dtype (torch.dtype): dtype of the returned boxes.
        device (str): device of the returned boxes.

    Returns:
        PairSet: N = P * K * S * R pairs (P points, K targets, S scales, R ratios).
    """
    spec = SETUPS[setup]
    generator = torch.Generator().manual_seed(seed)
    num = spec.num_points if num_points is None else num_points
    centres = sample_centres(points or spec.default_points, num, generator)  # (P, 2)

    unit_area = torch.tensor(LENGTH_UNIT[scale] ** 2, dtype=torch.float64)
    target_wh = sizes_from_ratios(unit_area, spec.target_ratios)  # (K, 2)
    anchor_areas = unit_area * torch.tensor(spec.anchor_scales, dtype=torch.float64)
    anchor_wh = sizes_from_ratios(anchor_areas, spec.anchor_ratios)  # (S, R, 2)

    shape = (num, len(spec.target_ratios)) + anchor_wh.shape[:2] + (2,)  # (P, K, S, R, 2)
    anchors = torch.cat(
        [centres[:, None, None, None, :].expand(shape), anchor_wh.expand(shape)], dim=-1
    )
    target_xy = torch.tensor(CENTRE, dtype=torch.float64).expand(shape)
    targets = torch.cat([target_xy, target_wh[None, :, None, None, :].expand(shape)], dim=-1)
    return PairSet(
        anchors=anchors.reshape(-1, 4).to(device=device, dtype=dtype),
        targets=targets.reshape(-1, 4).to(device=device, dtype=dtype),
    )
