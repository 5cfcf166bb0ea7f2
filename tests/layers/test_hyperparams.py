"""Every public loss function rejects hyper-parameters outside their range, naming them."""

import math

import pytest
import torch

from focal_eiou_d2.layers import (
    balanced_l1_loss,
    box_regression_loss,
    ciou_loss,
    diou_loss,
    eiou_loss,
    focal_eiou_loss,
    focal_eiou_star_loss,
    focal_eiou_v1_loss,
    focal_l1_loss,
    giou_loss,
    iou_loss,
    smooth_l1_loss,
)

NAN, INF = float("nan"), float("inf")
PRED = torch.tensor([[0.0, 0.0, 2.0, 4.0], [1.0, 1.0, 3.0, 5.0]])
TARGET = torch.tensor([[0.0, 0.0, 4.0, 4.0], [1.5, 0.5, 3.0, 4.0]])

EPS_MESSAGE = r"eps must be a finite number > 0"
GAMMA_MESSAGE = r"gamma must be a finite number >= 0"
FOCAL_L1_BETA_MESSAGE = r"beta must lie in \[1/e, 1\]"
SMOOTH_L1_BETA_MESSAGE = r"beta must be a finite number >= 0"

EPS_USERS = [
    iou_loss,
    giou_loss,
    diou_loss,
    ciou_loss,
    eiou_loss,
    focal_eiou_loss,
    focal_eiou_v1_loss,
    focal_eiou_star_loss,
]


def _bad_values():
    cases = [(fn, {"eps": eps}, EPS_MESSAGE) for fn in EPS_USERS for eps in (0, -1e-7, NAN, INF)]
    for fn in (focal_eiou_loss, focal_eiou_star_loss):
        cases += [(fn, {"gamma": gamma}, GAMMA_MESSAGE) for gamma in (NAN, -0.5, INF)]
    for fn in (focal_l1_loss, focal_eiou_v1_loss):
        cases += [(fn, {"beta": beta}, FOCAL_L1_BETA_MESSAGE) for beta in (NAN, 0.1, 1.5)]
    cases += [(smooth_l1_loss, {"beta": beta}, SMOOTH_L1_BETA_MESSAGE) for beta in (NAN, -1, INF)]
    for name in ("alpha", "gamma", "beta"):
        message = rf"BalancedL1 {name} must be a finite number > 0"
        cases += [(balanced_l1_loss, {name: value}, message) for value in (0, -1.0, NAN, INF)]
    cases.append((balanced_l1_loss, {"alpha": 0.01}, r"gamma / alpha must be at most 88\.7"))
    return cases


@pytest.mark.parametrize(
    "fn,params,message",
    _bad_values(),
    ids=lambda value: getattr(value, "__name__", None) if callable(value) else None,
)
def test_out_of_range_values_are_rejected(fn, params, message):
    with pytest.raises(ValueError, match=message):
        fn(PRED, TARGET, **params)


@pytest.mark.parametrize(
    "name,params,message",
    [
        ("focal_eiou", {"gamma": NAN}, GAMMA_MESSAGE),
        ("giou", {"eps": 0.0}, EPS_MESSAGE),
        ("focal_l1", {"beta": NAN}, FOCAL_L1_BETA_MESSAGE),
        ("smooth_l1", {"beta": NAN}, SMOOTH_L1_BETA_MESSAGE),
        ("balanced_l1", {"beta": 0.0}, "BalancedL1 beta"),
    ],
)
def test_dispatch_rejects_them_too(name, params, message):
    with pytest.raises(ValueError, match=message):
        box_regression_loss(name, PRED, TARGET, **params)


@pytest.mark.parametrize(
    "fn,params,message",
    [
        (
            focal_eiou_loss,
            {"gamma": torch.tensor(0.5)},
            "gamma must be a real number, got a Tensor",
        ),
        (eiou_loss, {"eps": "1e-7"}, "eps must be a real number, got a str"),
        (smooth_l1_loss, {"beta": True}, "beta must be a real number, got a bool"),
        (focal_eiou_loss, {"detach_weight": 1}, "detach_weight must be True or False"),
    ],
)
def test_values_that_are_not_numbers_are_type_errors(fn, params, message):
    with pytest.raises(TypeError, match=message):
        fn(PRED, TARGET, **params)


@pytest.mark.parametrize(
    "fn,params",
    [
        (focal_eiou_loss, {"gamma": 0, "eps": 1e-12}),
        (focal_eiou_loss, {"gamma": 2}),
        (focal_eiou_star_loss, {"gamma": 0.0}),
        (focal_l1_loss, {"beta": 1 / math.e}),
        (focal_eiou_v1_loss, {"beta": 1}),
        (smooth_l1_loss, {"beta": 0}),
        (balanced_l1_loss, {"alpha": 0.02, "gamma": 1.5, "beta": 1e-3}),
    ],
)
def test_boundary_values_are_accepted(fn, params):
    assert torch.isfinite(fn(PRED, TARGET, **params)).all()
