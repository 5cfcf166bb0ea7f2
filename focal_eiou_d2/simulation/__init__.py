"""Simulation: box regression by gradient descent on synthetic anchor-target pairs.

Reproduces the simulation of Zhang et al. (Sec. 5.1, Algorithm 1), which follows the DIoU
authors' simulation: every anchor box B is regressed onto its target B_gt by iterating

    B^t = B^{t-1} - mu_t * dL(B^{t-1}, B_gt) / dB            (Algorithm 1, read as descent)

on the box's (x, y, w, h) for t = 1..T, with every pair independent. The losses come from the
project's loss library (``focal_eiou_d2.layers.box_regression_loss``) and the per-pair gradient
from autograd of the sum of the per-pair losses.

Setups (:mod:`.setups`), as the paper states them: ``setup1``, 7 targets at (10, 10) with aspect
ratios 1:4 ... 4:1 and 1000 centre points "within a 20x20 box", each with 7 x 7 anchors
(343,000 pairs); ``setup2``, 3 targets and 100 points in a square of side 2.5, each with 3 x 3
anchors (2,700 pairs).

The text leaves the box size, the step rule and (by following the DIoU authors) the region open.
:data:`.config.READINGS` fixes them together in three named readings: ``literal`` (targets of
area 100, the regions as stated), ``scaled`` (everything scaled by 1/10: targets of area 1, a
2x2 box, a side-0.25 square) and ``diou`` (the DIoU authors' own setup: area 1, 5000 points in
a disc of radius 3, the (2 - IoU) step factor). Every default lives in :mod:`.config`;
docs/simulation.md compares the paper's claims under each reading.

Run ``python -m focal_eiou_d2.simulation --help``.
"""

from .config import DEFAULT_LOSSES, IOU_FAMILY, READINGS, SimulationConfig
from .engine import RegressionOutcome, regress
from .experiment import pairs_of, run_experiment
from .setups import SETUPS, PairSet, build_pairs

__all__ = [
    "DEFAULT_LOSSES",
    "IOU_FAMILY",
    "READINGS",
    "SETUPS",
    "PairSet",
    "RegressionOutcome",
    "SimulationConfig",
    "build_pairs",
    "pairs_of",
    "regress",
    "run_experiment",
]
