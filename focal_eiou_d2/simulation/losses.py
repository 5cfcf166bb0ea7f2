"""The simulation's view of the loss library: per-pair losses of (x, y, w, h) boxes.

Only the library's public dispatch is used (``box_regression_loss`` and ``get_box_loss``); no loss
is re-implemented here.
"""

import inspect
import math
from numbers import Real
from typing import Mapping, Optional

import torch

from focal_eiou_d2.layers import box_regression_loss, get_box_loss

from .boxes import xywh_to_xyxy

# One well-formed pair, read as XYXY boxes (IoU 1/3) or as coordinates (errors 0.25 and 0.5).
PROBE_PRED = (0.0, 0.0, 2.0, 1.0)
PROBE_TARGET = (0.5, 0.25, 2.5, 1.5)


def effective_params(name: str, overrides: Optional[Mapping[str, object]] = None) -> dict:
    """The hyper-parameters a loss will run with: the library's defaults updated by overrides.

    The overrides are checked before any work: each must be a parameter the loss accepts, a
    finite number or a bool, and the library must accept them and give a finite loss and
    gradient on one well-formed box pair (so its own range checks apply here too).

    Args:
        name (str): a key of ``focal_eiou_d2.layers.BOX_LOSSES``.
        overrides (Mapping | None): values to pass to the library.

    Returns:
        dict: every parameter of the loss that has a default or an override.

    Raises:
        ValueError: for an unknown loss, a parameter the loss does not accept, or a value that
            is not valid for it.
    """
    spec = get_box_loss(name)
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(spec.params))
    if unknown:
        raise ValueError(f"loss {name!r} accepts the parameters {list(spec.params)}, not {unknown}")
    for key, value in overrides.items():
        if not isinstance(value, bool) and not (isinstance(value, Real) and math.isfinite(value)):
            raise ValueError(f"{name}.{key} must be a finite number or true/false, got {value!r}")
    _probe(name, overrides)
    signature = inspect.signature(spec.fn).parameters
    defaults = {
        key: signature[key].default
        for key in spec.params
        if key in signature and signature[key].default is not inspect.Parameter.empty
    }
    return {**defaults, **overrides}


def _probe(name: str, overrides: dict) -> None:
    pred = torch.tensor([PROBE_PRED], dtype=torch.float64, requires_grad=True)
    target = torch.tensor([PROBE_TARGET], dtype=torch.float64)
    try:
        loss = box_regression_loss(name, pred, target, reduction="none", **overrides)
        (grad,) = torch.autograd.grad(loss.sum(), pred)
    except (TypeError, ValueError) as error:
        raise ValueError(f"loss {name!r} rejects {overrides}: {error}") from error
    if not (torch.isfinite(loss).all() and torch.isfinite(grad).all()):
        raise ValueError(
            f"loss {name!r} with {overrides} gives a non-finite loss or gradient on a "
            "well-formed box pair; use values in the range the loss documents"
        )


class SimulationLoss:
    """A library loss as a function of (x, y, w, h) boxes against fixed targets.

    IoU-family losses (``on_boxes``) get XYXY corners; coordinate losses (smooth_l1, focal_l1)
    get (x, y, w, h) directly and the library sums them over the four coordinates.

    Args:
        name (str): a key of ``focal_eiou_d2.layers.BOX_LOSSES``.
        targets (Tensor[N, 4]): target boxes (x, y, w, h).
        overrides (Mapping | None): hyper-parameters passed to the library.
    """

    def __init__(
        self, name: str, targets: torch.Tensor, overrides: Optional[Mapping] = None
    ) -> None:
        self.name = name
        self.on_boxes = get_box_loss(name).on_boxes
        self.params = effective_params(name, overrides)
        self._overrides = dict(overrides or {})
        self._targets = xywh_to_xyxy(targets) if self.on_boxes else targets

    def encode(self, boxes: torch.Tensor) -> torch.Tensor:
        """The library's input for these boxes: XYXY corners (differentiable) or the boxes.

        Args:
            boxes (Tensor[N, 4]): (x, y, w, h).

        Returns:
            Tensor[N, 4]: XYXY if ``on_boxes``, else ``boxes`` itself.
        """
        return xywh_to_xyxy(boxes) if self.on_boxes else boxes

    def from_encoded(self, pred: torch.Tensor) -> torch.Tensor:
        """Per-pair loss of an :meth:`encode` output.

        Args:
            pred (Tensor[N, 4]): XYXY boxes or (x, y, w, h), as :meth:`encode` returns.

        Returns:
            Tensor[N]: the loss of each pair.
        """
        return box_regression_loss(
            self.name, pred, self._targets, reduction="none", **self._overrides
        )
