import dataclasses
import inspect

import pytest
import torch
from box_samples import head_inputs

from focal_eiou_d2.layers import (
    BOX_LOSSES,
    BoxLossParameterError,
    BoxLossSpec,
    box_regression_loss,
    check_box_loss,
    eiou_loss,
    focal_eiou_loss,
    focal_l1_loss,
    giou_loss,
    normalize_by_weights,
)

BOX_NAMES = [
    "iou",
    "giou",
    "diou",
    "ciou",
    "eiou",
    "focal_eiou",
    "focal_eiou_v1",
    "focal_eiou_star",
    "siou",
    "shape_iou",
    "wiou_v1",
    "wiou_v3",
    "alpha_iou",
    "mpdiou",
    "inner_iou",
    "nwd",
]
COORDINATE_NAMES = ["smooth_l1", "focal_l1", "balanced_l1"]
# The IoU losses that take Eq. 10's focal weight as an option (not NWD, not the Wise-IoU versions).
FOCAL_OPTIONAL = [
    "iou",
    "giou",
    "diou",
    "ciou",
    "eiou",
    "siou",
    "shape_iou",
    "alpha_iou",
    "mpdiou",
    "inner_iou",
]

PRED = torch.tensor([[[0.0, 0.0, 2.0, 4.0], [1.0, 1.0, 3.0, 5.0]]], dtype=torch.float64)
TARGET = torch.tensor([[[0.0, 0.0, 4.0, 4.0], [1.5, 0.5, 3.0, 4.0]]], dtype=torch.float64)


def test_names_and_kinds():
    assert list(BOX_LOSSES) == BOX_NAMES + COORDINATE_NAMES
    assert all(BOX_LOSSES[name].on_boxes for name in BOX_NAMES)
    assert not any(BOX_LOSSES[name].on_boxes for name in COORDINATE_NAMES)
    assert BOX_LOSSES["focal_eiou"].params == ("gamma", "eps", "detach_weight")
    assert BOX_LOSSES["focal_l1"].params == ("beta",)
    assert BOX_LOSSES["balanced_l1"].params == ("alpha", "gamma", "beta")
    weighted = [n for n, spec in BOX_LOSSES.items() if "weighted" in spec.reductions]
    assert sorted(weighted) == sorted(["focal_eiou", *FOCAL_OPTIONAL])
    for name in FOCAL_OPTIONAL:
        assert BOX_LOSSES[name].params[-2:] == ("gamma", "detach_weight")


def test_registry_is_read_only():
    with pytest.raises(TypeError):
        BOX_LOSSES["mine"] = BOX_LOSSES["iou"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        BOX_LOSSES["iou"].on_boxes = False
    assert isinstance(BOX_LOSSES["iou"], BoxLossSpec)


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError) as error:
        box_regression_loss("mse", PRED, TARGET)
    assert all(name in str(error.value) for name in BOX_LOSSES)


def test_unknown_parameter_is_named():
    with pytest.raises(TypeError, match="gamma"):
        box_regression_loss("nwd", PRED, TARGET, gamma=0.5)
    with pytest.raises(TypeError, match="detach_weight"):
        box_regression_loss("focal_eiou_star", PRED, TARGET, detach_weight=False)


@pytest.mark.parametrize(
    "name", [name for name in BOX_LOSSES if name != "focal_eiou" and name not in FOCAL_OPTIONAL]
)
def test_weighted_reduction_only_with_the_focal_weight(name):
    with pytest.raises(ValueError, match="weighted"):
        box_regression_loss(name, PRED, TARGET, reduction="weighted", **head_inputs(name))


def test_direct_calls_reject_weighted_and_unknown_reductions():
    with pytest.raises(ValueError, match="focal_eiou"):
        eiou_loss(PRED, TARGET, reduction="weighted")
    with pytest.raises(ValueError, match="'none', 'sum', 'mean'"):
        focal_eiou_loss(PRED, TARGET, reduction="avg")


def test_last_dim_must_be_four():
    with pytest.raises(ValueError, match=r"\(\.\.\., 4\)"):
        box_regression_loss("smooth_l1", PRED[..., :3], TARGET[..., :3])
    with pytest.raises(ValueError, match=r"\(\.\.\., 4\)"):
        giou_loss(PRED[..., :3], TARGET[..., :3])


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_dispatch_matches_direct_calls(reduction):
    torch.testing.assert_close(
        box_regression_loss("focal_eiou", PRED, TARGET, reduction, gamma=1.0, eps=1e-9),
        focal_eiou_loss(PRED, TARGET, gamma=1.0, eps=1e-9, reduction=reduction),
    )
    torch.testing.assert_close(
        box_regression_loss("focal_eiou", PRED, TARGET, "weighted"),
        focal_eiou_loss(PRED, TARGET, reduction="weighted"),
    )


@pytest.mark.parametrize("name", BOX_NAMES + COORDINATE_NAMES)
def test_shapes(name):
    inputs = head_inputs(name)
    assert box_regression_loss(name, PRED, TARGET, **inputs).shape == (1, 2)
    assert box_regression_loss(name, PRED, TARGET, "mean", **inputs).shape == ()


def test_coordinate_losses_sum_over_last_dim():
    summed = box_regression_loss("focal_l1", PRED, TARGET, beta=0.5)
    torch.testing.assert_close(summed, focal_l1_loss(PRED, TARGET, beta=0.5).sum(dim=-1))
    mean = box_regression_loss("smooth_l1", PRED, TARGET, reduction="mean")
    # beta = 0 (default) is L1: mean over pairs of the per-pair sum of |pred - target|.
    torch.testing.assert_close(mean, (PRED - TARGET).abs().sum(dim=-1).mean())


@pytest.mark.parametrize("name", BOX_NAMES + COORDINATE_NAMES)
def test_defaults_are_those_of_the_function(name):
    spec = BOX_LOSSES[name]
    signature = inspect.signature(spec.fn).parameters
    own = [key for key in spec.params if not spec.focal_optional or key in signature]
    assert dict(spec.defaults) == {
        **{key: signature[key].default for key in own},
        **({"gamma": 0.0, "detach_weight": True} if spec.focal_optional else {}),
    }
    assert signature["reduction"].default == "none"


@pytest.mark.parametrize("name", BOX_NAMES + COORDINATE_NAMES)
def test_per_pair_form_is_the_checked_function_unreduced(name):
    spec = BOX_LOSSES[name]
    inputs = head_inputs(name)
    per_pair = spec.per_pair(PRED, TARGET, **check_box_loss(name, {}), **inputs)
    torch.testing.assert_close(per_pair, spec.fn(PRED, TARGET, reduction="none", **inputs))


def test_head_inputs_are_passed_at_every_call_not_parameters():
    assert BOX_LOSSES["mpdiou"].head_inputs == ("image_size",)
    assert BOX_LOSSES["wiou_v3"].head_inputs == ("iou_loss_mean",)
    assert BOX_LOSSES["wiou_v3"].params == ("alpha", "delta", "eps")
    assert [name for name, spec in BOX_LOSSES.items() if spec.head_inputs] == ["wiou_v3", "mpdiou"]
    with pytest.raises(ValueError, match="does not take \\['image_size'\\]"):
        check_box_loss("mpdiou", {"image_size": (10, 10)})
    with pytest.raises(ValueError, match="does not take \\['iou_loss_mean'\\]"):
        check_box_loss("wiou_v3", {"iou_loss_mean": 0.5})
    with pytest.raises(TypeError, match="needs \\['image_size'\\] at every call"):
        box_regression_loss("mpdiou", PRED, TARGET)
    with pytest.raises(TypeError, match="does not accept \\['image_size'\\]"):
        box_regression_loss("giou", PRED, TARGET, image_size=(10, 10))


def test_check_box_loss_fills_defaults_and_names_the_bad_parameter():
    assert check_box_loss("focal_eiou", {"gamma": 1.0}) == {
        "gamma": 1.0,
        "eps": BOX_LOSSES["focal_eiou"].defaults["eps"],
        "detach_weight": True,
    }
    with pytest.raises(BoxLossParameterError, match="gamma must be a finite number >= 0") as info:
        check_box_loss("focal_eiou", {"gamma": -1.0})
    assert (info.value.loss, info.value.param) == ("focal_eiou", "gamma")
    with pytest.raises(BoxLossParameterError, match="gamma / alpha") as info:
        check_box_loss("balanced_l1", {"alpha": 0.01, "gamma": 10.0})
    assert info.value.param == "gamma"
    with pytest.raises(ValueError, match="does not take \\['beta'\\]"):
        check_box_loss("eiou", {"beta": 1.0})
    with pytest.raises(ValueError, match="unknown box-regression loss 'eoiu'; valid names: iou"):
        check_box_loss("eoiu", {})


def test_eq11_is_the_weighted_mean_and_zero_without_weight():
    weighted = torch.tensor(3.0, requires_grad=True)
    torch.testing.assert_close(normalize_by_weights(weighted, torch.tensor(1.5)), torch.tensor(2.0))
    zero = normalize_by_weights(weighted * 0, torch.tensor(0.0, dtype=torch.float64))
    assert zero.item() == 0 and zero.dtype == torch.float32
    zero.backward()  # the graph is kept
    assert weighted.grad.item() == 0
