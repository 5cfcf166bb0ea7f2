"""Options of one simulation run: the paper's ambiguities as explicit choices, with defaults."""

from dataclasses import asdict, dataclass, field
from typing import Optional

import torch

IOU_FAMILY = ("iou", "giou", "diou", "ciou", "eiou", "focal_eiou")
"""The six IoU-family losses of the paper's simulation figures."""

COORDINATE_LOSSES = ("smooth_l1", "focal_l1")
"""The l_n-type losses, applied to (x, y, w, h)."""

DEFAULT_LOSSES = IOU_FAMILY + COORDINATE_LOSSES

SCALES = ("unit", "literal")
POINT_REGIONS = ("square", "disc")
UPDATE_RULES = ("descent", "diou")
DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass
class SimulationConfig:
    """Everything that determines a simulation run (and is written to results.json).

    Attributes:
        setup: "setup1" | "setup2" | "diou" (see :mod:`.setups`).
        losses: names of :data:`focal_eiou_d2.layers.BOX_LOSSES`, run one after the other.
        scale: "unit" (targets of area 1) | "literal" (targets of area 100).
        points: "square" | "disc", or None for the setup's default region.
        num_points: number of centre points, or None for the setup's number.
        update: "descent" (Algorithm 1) | "diou" (step times (2 - IoU)).
        iterations: T.
        base_lr: learning rate until the first milestone.
        milestones: fractions of T after which the learning rate is multiplied by ``lr_decay``.
        lr_decay: factor applied at each milestone.
        min_size: widths and heights are clamped to at least this after every step.
        seed: seed of the centre points.
        dtype: "float32" | "float64".
        device: "cpu" | "cuda" (or any torch device string).
        quantile_every: IoU quantiles are stored every this many iterations (and at T).
        loss_params: per-loss hyper-parameters passed to the library, e.g.
            {"focal_eiou": {"gamma": 0.5}}; unset ones keep the library's defaults.
    """

    setup: str = "setup1"
    losses: tuple[str, ...] = DEFAULT_LOSSES
    scale: str = "unit"
    points: Optional[str] = None
    num_points: Optional[int] = None
    update: str = "descent"
    iterations: int = 200
    base_lr: float = 0.1
    milestones: tuple[float, ...] = (0.8, 0.9)
    lr_decay: float = 0.1
    min_size: float = 1e-6
    seed: int = 0
    dtype: str = "float32"
    device: str = "cpu"
    quantile_every: int = 10
    loss_params: dict[str, dict[str, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_choice("scale", self.scale, SCALES)
        _check_choice("update", self.update, UPDATE_RULES)
        _check_choice("dtype", self.dtype, tuple(DTYPES))
        if self.points is not None:
            _check_choice("points", self.points, POINT_REGIONS)
        if self.iterations < 1 or self.quantile_every < 1:
            raise ValueError("iterations and quantile_every must be >= 1")
        self.losses = tuple(self.losses)
        self.milestones = tuple(self.milestones)

    @property
    def torch_dtype(self) -> torch.dtype:
        """The torch dtype named by ``dtype``."""
        return DTYPES[self.dtype]

    def to_dict(self) -> dict:
        """Return the options as a JSON-serializable dict."""
        out = asdict(self)
        out["losses"] = list(self.losses)
        out["milestones"] = list(self.milestones)
        return out


def _check_choice(option: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{option} must be one of {choices}, got {value!r}")
