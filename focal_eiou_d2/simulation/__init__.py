"""Simulation lab: box regression by gradient descent on synthetic anchor-target pairs.

Reproduces the simulation of Zhang et al. (Sec. 5.1, Algorithm 1), which follows the DIoU
authors' simulation: every anchor box B is regressed onto its target B_gt by iterating

    B^t = B^{t-1} - mu_t * dL(B^{t-1}, B_gt) / dB            (Algorithm 1, read as descent)

on the box's (x, y, w, h) for t = 1..T, with every pair independent. The losses come from the
project's loss library (``focal_eiou_d2.layers.box_regression_loss``) and the per-pair gradient
from autograd of the sum of the per-pair losses.

Setups (:mod:`.setups`):

- ``setup1`` (paper): 7 targets at (10, 10) with aspect ratios 1:4 ... 4:1; 1000 centre points,
  each with 7 x 7 anchors (scales 50, 67, 75, 100, 133, 150, 200 x the same 7 ratios):
  343,000 pairs.
- ``setup2`` (paper): 3 targets (1:3, 1:1, 3:1), 100 centre points, 3 x 3 anchors (scales 50,
  100, 150 x ratios 1:3, 1:1, 3:1): 2,700 pairs.
- ``diou`` (the DIoU authors' original): as setup1 with 5000 points: 1,715,000 pairs.

The paper leaves three things open; each is an option with a stated default:

- ``scale`` (default ``unit``): ``unit`` reads "scale 100" as the DIoU convention, so targets
  have area 1 and anchors area 0.5 ... 2 times the target's area. ``literal`` takes the numbers
  as areas in the paper's units: targets of area 100 and anchors of area 50 ... 200 (every
  length x 10) while the centre regions keep their stated size, so pairs overlap far more.
- ``points`` (default ``square`` for setup1/setup2, ``disc`` for diou): ``square`` is the side
  2.5 square centred on (10, 10) that the paper states for setup 2; the paper states no region
  for setup 1, and its only stated region is used there too. ``disc`` is the DIoU authors'
  disc of radius 3 centred on (10, 10).
- ``update`` (default ``descent``): ``descent`` is Algorithm 1 as written (no extra factor);
  ``diou`` multiplies each pair's step by (2 - IoU), as the DIoU authors' code does.

Other defaults: T = 200 with learning rate 0.1 until 0.8T, 0.01 until 0.9T and 0.001 after;
float32; widths and heights clamped to >= 1e-6 after every step; seed 0; losses iou, giou, diou,
ciou, eiou, focal_eiou (gamma 0.5, detached weight), smooth_l1 (the library's default beta = 0,
i.e. L1) and focal_l1 (beta 0.8), the last two on (x, y, w, h). No default was chosen to make a
claim of the paper hold.

Run ``python -m focal_eiou_d2.simulation --help``.
"""

from .config import DEFAULT_LOSSES, IOU_FAMILY, SimulationConfig
from .engine import RegressionOutcome, regress
from .experiment import run_experiment
from .setups import SETUPS, PairSet, build_pairs

__all__ = [
    "DEFAULT_LOSSES",
    "IOU_FAMILY",
    "SETUPS",
    "PairSet",
    "RegressionOutcome",
    "SimulationConfig",
    "build_pairs",
    "regress",
    "run_experiment",
]
