"""Anchor-target pairs of the paper's two simulation setups (Sec. 5.1, Algorithm 1).

Every target is centred on (10, 10). Aspect ratios are w:h, so ratio r and area A give
w = sqrt(A * r), h = sqrt(A / r) (1:4 with area 1 is 0.5 x 2, as in the DIoU authors' code). An
anchor's area is its scale times its target's area (the paper's anchor scales 50 ... 200 against
the target's "scale 100"). Centre points are drawn uniformly in a region around (10, 10), written
``square:SIDE`` (an axis-aligned square of that side) or ``disc:RADIUS``. Pairs are ordered
point-major: (point, target, anchor scale, anchor ratio), like the DIoU authors' loops.
"""

import math
from dataclasses import dataclass

import torch

CENTRE = (10.0, 10.0)
PAPER_TARGET_AREA = 100.0  # Algorithm 1: targets of "an area of 100"
REGION_SHAPES = ("square", "disc")

RATIOS_7 = (1 / 4, 1 / 3, 1 / 2, 1.0, 2.0, 3.0, 4.0)
RATIOS_3 = (1 / 3, 1.0, 3.0)
SCALES_7 = (0.5, 0.67, 0.75, 1.0, 1.33, 1.5, 2.0)
SCALES_3 = (0.5, 1.0, 1.5)


@dataclass(frozen=True)
class SetupSpec:
    """One simulation setup as the paper states it.

    Attributes:
        num_points: number of random centre points.
        target_ratios: aspect ratios (w:h) of the targets, all of the same area.
        anchor_scales: anchor areas relative to the target's area.
        anchor_ratios: aspect ratios (w:h) of the anchors.
        region: region of the centre points for targets of :data:`PAPER_TARGET_AREA`.
        description: one line for --help and results.json.
    """

    num_points: int
    target_ratios: tuple[float, ...]
    anchor_scales: tuple[float, ...]
    anchor_ratios: tuple[float, ...]
    region: str
    description: str


SETUPS = {
    # Sec. 5.1: "we randomly generate 1000 points within a 20x20 box"
    "setup1": SetupSpec(
        1000, RATIOS_7, SCALES_7, RATIOS_7, "square:20", "7 targets x 7 scales x 7 ratios per point"
    ),
    # Sec. 5.1: the points "within a smaller square" of side 2.5, for heavy overlaps
    "setup2": SetupSpec(
        100, RATIOS_3, SCALES_3, RATIOS_3, "square:2.5", "3 targets x 3 scales x 3 ratios per point"
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


def parse_region(region: str) -> tuple[str, float]:
    """Split ``square:SIDE`` or ``disc:RADIUS`` into its shape and size.

    Raises:
        ValueError: for another shape or a size that is not a finite number > 0.
    """
    shape, _, size = str(region).partition(":")
    try:
        value = float(size)
    except ValueError:
        value = math.nan
    if shape not in REGION_SHAPES or not (math.isfinite(value) and value > 0):
        raise ValueError(f"a region is square:SIDE or disc:RADIUS with a size > 0, got {region!r}")
    return shape, value


def scale_region(region: str, factor: float) -> str:
    """The region with its size multiplied by ``factor``, e.g. square:20 x 0.1 -> square:2."""
    shape, size = parse_region(region)
    return f"{shape}:{size * factor:.12g}"


def sample_centres(region: str, num: int, generator: torch.Generator) -> torch.Tensor:
    """Draw centre points uniformly in a region around (10, 10).

    Args:
        region (str): ``square:SIDE`` or ``disc:RADIUS``.
        num (int): number of points.
        generator (torch.Generator): CPU generator, so points depend on the seed only.

    Returns:
        Tensor[num, 2]: float64 (x, y).
    """
    shape, size = parse_region(region)
    uniform = torch.rand(num, 2, generator=generator, dtype=torch.float64)
    centre = torch.tensor(CENTRE, dtype=torch.float64)
    if shape == "square":
        return centre + (uniform - 0.5) * size
    radius = size * uniform[:, 0].sqrt()  # sqrt: uniform density over the disc
    angle = 2 * torch.pi * uniform[:, 1]
    return centre + torch.stack([radius * angle.cos(), radius * angle.sin()], dim=1)


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
    *,
    target_area: float,
    points: str,
    num_points: int,
    seed: int,
    dtype: torch.dtype,
    device: str,
) -> PairSet:
    """Build every anchor-target pair of a setup (vectorized; generated in float64).

    Args:
        setup (str): a key of :data:`SETUPS`.
        target_area (float): area of every target.
        points (str): region of the centre points, ``square:SIDE`` or ``disc:RADIUS``.
        num_points (int): number of centre points P.
        seed (int): seed of the centre points.
        dtype (torch.dtype): dtype of the returned boxes.
        device (str): device of the returned boxes.

    Returns:
        PairSet: N = P * K * S * R pairs (P points, K targets, S scales, R ratios).
    """
    spec = SETUPS[setup]
    generator = torch.Generator().manual_seed(seed)
    centres = sample_centres(points, num_points, generator)  # (P, 2)

    area = torch.tensor(target_area, dtype=torch.float64)
    target_wh = sizes_from_ratios(area, spec.target_ratios)  # (K, 2)
    anchor_areas = area * torch.tensor(spec.anchor_scales, dtype=torch.float64)
    anchor_wh = sizes_from_ratios(anchor_areas, spec.anchor_ratios)  # (S, R, 2)

    shape = (num_points, len(spec.target_ratios)) + anchor_wh.shape[:2] + (2,)  # (P, K, S, R, 2)
    anchors = torch.cat(
        [centres[:, None, None, None, :].expand(shape), anchor_wh.expand(shape)], dim=-1
    )
    target_xy = torch.tensor(CENTRE, dtype=torch.float64).expand(shape)
    targets = torch.cat([target_xy, target_wh[None, :, None, None, :].expand(shape)], dim=-1)
    return PairSet(
        anchors=anchors.reshape(-1, 4).to(device=device, dtype=dtype),
        targets=targets.reshape(-1, 4).to(device=device, dtype=dtype),
    )
