"""The LazyConfig quickstart RetinaNet builds the model of its YAML counterpart: the same layers,
the same initial weights from the same seed, the same anchors, matcher, box loss and test
settings, on the same data."""

import torch

from focal_eiou_d2.engine import load_run_config

YAML = "configs/quickstart/retinanet_R_18_FPN_shapes_focal_eiou.yaml"
LAZY = "configs/lazy/quickstart/retinanet_R_18_FPN_shapes_focal_eiou.py"
SETTINGS = (
    "num_classes",
    "focal_loss_alpha",
    "focal_loss_gamma",
    "test_score_thresh",
    "test_topk_candidates",
    "test_nms_thresh",
    "max_detections_per_image",
    "input_format",
    "head_in_features",
    "box_reg_loss_weight",
)


def built(path):
    config = load_run_config(path)
    torch.manual_seed(0)
    return config, config.build_model()


def test_the_lazy_quickstart_retinanet_is_the_yaml_one():
    (yaml_config, expected), (lazy_config, model) = built(YAML), built(LAZY)
    assert lazy_config.train_datasets == yaml_config.train_datasets
    assert lazy_config.test_datasets == yaml_config.test_datasets
    assert repr(model) == repr(expected)  # every layer, with its sizes
    state, expected_state = model.state_dict(), expected.state_dict()
    assert list(state) == list(expected_state)
    for name, value in expected_state.items():
        assert torch.equal(state[name], value), name
    for name in SETTINGS:
        assert getattr(model, name) == getattr(expected, name), name
    assert torch.equal(model.pixel_mean, expected.pixel_mean)
    assert torch.equal(model.pixel_std, expected.pixel_std)
    anchors, expected_anchors = model.anchor_generator, expected.anchor_generator
    assert anchors.strides == expected_anchors.strides and anchors.offset == expected_anchors.offset
    for cell, expected_cell in zip(
        anchors.cell_anchors.buffers(), expected_anchors.cell_anchors.buffers(), strict=True
    ):
        assert torch.equal(cell, expected_cell)
    matcher, expected_matcher = model.anchor_matcher, expected.anchor_matcher
    assert vars(matcher) == vars(expected_matcher)
    assert list(model.box2box_transform.weights) == list(expected.box2box_transform.weights)
    loss, expected_loss = model.box_loss, expected.box_loss
    assert (loss.loss_type, loss.params) == (expected_loss.loss_type, expected_loss.params)
    assert (loss.weighted, loss.eq11_form) == (expected_loss.weighted, expected_loss.eq11_form)
