"""Options of a simulation run: every default, the three readings of the paper, the validation.

This module is the one source of the simulation's defaults. A :class:`SimulationConfig` field
left at None is filled from the chosen reading (:data:`READINGS`) and setup; every other field
has its default below. The command line builds its flags, help texts and defaults from these
fields (their metadata), and the command line and the Python API both validate through
:class:`SimulationConfig`, before any work.
"""

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from numbers import Integral, Real
from types import MappingProxyType
from typing import Optional

import torch

from focal_eiou_d2.layers import BOX_LOSSES, get_box_loss

from .losses import effective_params
from .schedule import StepSchedule
from .setups import PAPER_TARGET_AREA, SETUPS, parse_region, scale_region

IOU_FAMILY = ("iou", "giou", "diou", "ciou", "eiou", "focal_eiou")
"""The six IoU-family losses of the paper's simulation figures."""

COORDINATE_LOSSES = ("smooth_l1", "focal_l1")
"""The l_n-type losses, applied to (x, y, w, h)."""

DEFAULT_LOSSES = IOU_FAMILY + COORDINATE_LOSSES

SIMULATED_LOSSES = tuple(name for name, spec in BOX_LOSSES.items() if not spec.head_inputs)
"""The losses the simulation runs: every loss of the library but those that need inputs from a
detection head (an image size, a running mean kept as training state)."""

UPDATE_RULES = ("descent", "diou")
DTYPES = {"float32": torch.float32, "float64": torch.float64}
DEVICE_TYPES = ("cpu", "cuda")


@dataclass(frozen=True)
class Reading:
    """One reading of the paper's simulation: the choices its text leaves open, made together.

    Attributes:
        description: one line for --help.
        target_area: area of every target (anchors: 0.5 to 2 times it).
        update: "descent" (Algorithm 1: B <- B - lr * dL/dB) or "diou" (that step times
            (2 - IoU), as the DIoU authors' code does).
        placements: per setup, (region, number of points) replacing the paper's placement.
            Setups not listed keep the paper's number of points and its region, scaled with the
            box lengths (by sqrt(target_area / 100)).
    """

    description: str
    target_area: float
    update: str
    placements: Mapping[str, tuple[str, int]] = field(default_factory=dict)

    def points(self, setup: str) -> str:
        """Region of the centre points of ``setup`` under this reading."""
        if setup in self.placements:
            return self.placements[setup][0]
        length_factor = math.sqrt(self.target_area / PAPER_TARGET_AREA)
        return scale_region(SETUPS[setup].region, length_factor)

    def num_points(self, setup: str) -> int:
        """Number of centre points of ``setup`` under this reading."""
        if setup in self.placements:
            return self.placements[setup][1]
        return SETUPS[setup].num_points


READINGS: Mapping[str, Reading] = MappingProxyType(
    {
        "literal": Reading(
            "the paper's text as written: targets of area 100, the regions as stated",
            target_area=PAPER_TARGET_AREA,
            update="descent",
        ),
        "scaled": Reading(
            "the literal geometry scaled by 1/10: targets of area 1, as in the DIoU authors' runs",
            target_area=1.0,
            update="descent",
        ),
        "diou": Reading(
            "the DIoU authors' own setup: area 1, 5000 points in a disc, step times (2 - IoU)",
            target_area=1.0,
            update="diou",
            placements={"setup1": ("disc:3", 5000)},
        ),
    }
)
"""The three readings of Sec. 5.1 (docs/simulation.md compares the paper's claims under each)."""

DEFAULT_READING = "scaled"
"""The paper's stated geometry and schedule at the box size of the DIoU simulation it follows,
at which that schedule brings the IoU-family losses near their targets within T = 200 (under
"literal" they stay far from them; docs/simulation.md)."""


def _option(default, flag: str, help: str, **argparse_kwargs):
    """A config field with its command-line flag, help text and argparse keywords."""
    metadata = {"flag": flag, "help": help, "argparse": argparse_kwargs}
    return field(default=default, metadata=metadata)


@dataclass
class SimulationConfig:
    """Everything that determines a simulation run (and is written to results.json).

    Fields left at None are filled from the reading and setup (``dataclasses.replace`` keeps
    the filled-in values: build a new config to change the reading or setup); then every field
    is validated. Each field's metadata holds its command-line flag and help text.

    Raises:
        ValueError: naming the field, its flag and the valid values, for any invalid option.
    """

    reading: str = _option(
        DEFAULT_READING, "--reading", f"reading of the paper: {', '.join(READINGS)}"
    )
    setup: str = _option(
        "setup1",
        "--setup",
        "; ".join(f"{name}: {spec.description}" for name, spec in SETUPS.items()),
    )
    losses: tuple[str, ...] = _option(
        DEFAULT_LOSSES,
        "--losses",
        f"losses, run one after the other; among {', '.join(SIMULATED_LOSSES)}",
        nargs="+",
        metavar="LOSS",
    )
    target_area: Optional[float] = _option(
        None, "--target-area", "area of every target (anchors: 0.5 to 2 times it)", type=float
    )
    points: Optional[str] = _option(
        None,
        "--points",
        "region of the centre points around (10, 10): square:SIDE or disc:RADIUS",
        metavar="REGION",
    )
    num_points: Optional[int] = _option(None, "--num-points", "number of centre points", type=int)
    update: Optional[str] = _option(
        None,
        "--update",
        "descent: B <- B - lr * dL/dB (Algorithm 1); diou: that step times (2 - IoU)",
    )
    iterations: int = _option(200, "--iterations", "T, the number of updates", type=int)
    base_lr: float = _option(0.1, "--lr", "learning rate until the first milestone", type=float)
    milestones: tuple[float, ...] = _option(
        (0.8, 0.9),
        "--milestones",
        "fractions of T after which the learning rate is multiplied by --lr-decay",
        type=float,
        nargs="*",
    )
    lr_decay: float = _option(0.1, "--lr-decay", "learning-rate factor per milestone", type=float)
    min_size: float = _option(
        1e-6, "--min-size", "w and h are clamped to at least this after every update", type=float
    )
    seed: int = _option(0, "--seed", "seed of the centre points", type=int)
    dtype: str = _option("float32", "--dtype", f"one of {', '.join(DTYPES)}")
    device: str = _option("cpu", "--device", "cpu, cuda or cuda:N")
    quantile_every: int = _option(
        10,
        "--quantile-every",
        "IoU quantiles are stored every this many updates and at T",
        type=int,
    )
    loss_params: dict[str, dict[str, object]] = field(
        default_factory=dict, metadata={"flag": "--param"}
    )
    """Per-loss hyper-parameters passed to the library, e.g. {"focal_eiou": {"gamma": 0.5}};
    unset ones keep the library's defaults."""

    def __post_init__(self) -> None:
        self._check_choice("reading", READINGS)
        self._check_choice("setup", SETUPS)
        reading = READINGS[self.reading]
        if self.target_area is None:
            self.target_area = reading.target_area
        if self.points is None:
            self.points = reading.points(self.setup)
        if self.num_points is None:
            self.num_points = reading.num_points(self.setup)
        if self.update is None:
            self.update = reading.update
        self.losses = tuple(self.losses)
        self.milestones = tuple(self.milestones)
        self._validate()

    @property
    def torch_dtype(self) -> torch.dtype:
        """The torch dtype named by ``dtype``."""
        return DTYPES[self.dtype]

    @property
    def schedule(self) -> StepSchedule:
        """The learning-rate schedule mu_t of Algorithm 1."""
        return StepSchedule(self.iterations, self.base_lr, self.milestones, self.lr_decay)

    def to_dict(self) -> dict:
        """Return the options as a JSON-serializable dict."""
        out = asdict(self)
        out["losses"] = list(self.losses)
        out["milestones"] = list(self.milestones)
        return out

    def _validate(self) -> None:
        self._check_choice("update", UPDATE_RULES)
        self._check_choice("dtype", DTYPES)
        try:
            parse_region(self.points)
        except ValueError:
            self._fail("points", "square:SIDE or disc:RADIUS with a size > 0", self.points)
        for name in ("target_area", "base_lr", "lr_decay", "min_size"):
            value = getattr(self, name)
            self._check(name, _is_finite(value) and value > 0, "a finite number > 0")
        for name in ("num_points", "iterations", "quantile_every"):
            value = getattr(self, name)
            self._check(name, _is_int(value) and value >= 1, "an integer >= 1")
        self._check("seed", _is_int(self.seed) and self.seed >= 0, "an integer >= 0")
        fractions = self.milestones
        valid = all(_is_finite(m) and 0 < m <= 1 for m in fractions)
        self._check(
            "milestones",
            valid and list(fractions) == sorted(set(fractions)),
            "increasing fractions of T in (0, 1]",
        )
        self._validate_losses()
        self._validate_device()

    def _validate_losses(self) -> None:
        unknown = [name for name in self.losses if name not in SIMULATED_LOSSES]
        if not self.losses or unknown or len(set(self.losses)) != len(self.losses):
            self._fail("losses", f"distinct names among {', '.join(SIMULATED_LOSSES)}", self.losses)
        valid = isinstance(self.loss_params, Mapping)
        valid = valid and all(isinstance(params, Mapping) for params in self.loss_params.values())
        self._check("loss_params", valid, "a mapping {loss: {parameter: value}}")
        for name, params in self.loss_params.items():
            try:
                get_box_loss(name)
            except ValueError as error:
                raise ValueError(f"loss_params (--param): {error}") from None
            if name not in self.losses:
                raise ValueError(
                    f"loss_params (--param) sets {name!r}, which this run does not include; add "
                    "it to --losses or drop its --param"
                )
            try:
                effective_params(name, params)
            except ValueError as error:
                raise ValueError(f"loss_params (--param): {error}") from error

    def _validate_device(self) -> None:
        try:
            device = torch.device(self.device)
        except RuntimeError:
            device = None
        if device is None or device.type not in DEVICE_TYPES:
            self._fail("device", "cpu, cuda or cuda:N", self.device)
        if device.type == "cuda":
            available = torch.cuda.device_count() if torch.cuda.is_available() else 0
            index = 0 if device.index is None else device.index
            if index >= available:
                self._fail(
                    "device",
                    f"a device of this machine ({available} CUDA device(s); use --device cpu)",
                    self.device,
                )

    def _check_choice(self, name: str, choices) -> None:
        self._check(name, getattr(self, name) in choices, f"one of {', '.join(choices)}")

    def _check(self, name: str, valid: bool, expected: str) -> None:
        if not valid:
            self._fail(name, expected, getattr(self, name))

    def _fail(self, name: str, expected: str, value) -> None:
        flag = {option.name: option.metadata.get("flag") for option in fields(self)}[name]
        raise ValueError(f"{name} ({flag}) must be {expected}, got {value!r}")


def _is_finite(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)
