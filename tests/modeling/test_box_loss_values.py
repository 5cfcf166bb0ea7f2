"""The box loss a head reports equals the loss library's value on the same decoded boxes."""

import pytest
import torch
from detectron2.modeling.box_regression import Box2BoxTransform
from detectron2.modeling.meta_arch.fcos import FCOS
from detectron2.structures import Boxes
from tiny_models import build_tiny_model, tiny_cfg

from focal_eiou_d2.layers import box_regression_loss, focal_eiou_loss
from focal_eiou_d2.modeling import BoxRegressionLoss

# Hand-built pairs: anchors (or proposals), their targets, and predicted deltas.
ANCHORS = torch.tensor(
    [[10.0, 10, 50, 40], [30, 20, 90, 100], [0, 0, 32, 32], [60, 60, 80, 120], [5, 40, 25, 60]]
)
TARGETS = torch.tensor(
    [[12.0, 8, 55, 45], [25, 30, 95, 90], [4, 2, 30, 36], [58, 70, 85, 110], [0, 0, 8, 8]]
)
DELTAS = torch.tensor(
    [
        [0.1, -0.2, 0.05, 0.1],
        [0.0, 0.1, -0.2, 0.3],
        [-0.1, 0.0, 0.2, -0.1],
        [0.3, 0.2, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0],
    ]
)
LOSS_TYPES = ["smooth_l1", "giou", "eiou", "focal_eiou", "focal_l1", "focal_eiou_star"]


def expected_sum(loss_type, transform, anchors, deltas, targets):
    """Library loss summed over pairs, decoding with Detectron2's transform directly."""
    if loss_type in ("smooth_l1", "focal_l1"):
        return box_regression_loss(
            loss_type, deltas, transform.get_deltas(anchors, targets), reduction="sum"
        )
    boxes = transform.apply_deltas(deltas, anchors)
    return box_regression_loss(loss_type, boxes, targets, reduction="sum")


def retinanet_losses(model, anchors, deltas, targets, positive):
    """Call RetinaNet.losses on one image whose anchors are ``anchors``."""
    num_classes = model.num_classes
    labels = torch.where(positive, torch.tensor(1), torch.tensor(num_classes))
    logits = torch.zeros(1, len(anchors), num_classes)
    return model.losses([Boxes(anchors)], [logits], [labels], [deltas[None]], [targets])


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
def test_retinanet_box_loss_matches_library(loss_type, event_storage):
    model = build_tiny_model("retinanet", loss_type)
    model.box_reg_loss_weight = 2.5
    positive = torch.tensor([True, True, True, False, True])
    losses = retinanet_losses(model, ANCHORS, DELTAS, TARGETS, positive)
    transform = model.box2box_transform
    pairs = (ANCHORS[positive], DELTAS[positive], TARGETS[positive])
    if loss_type == "focal_eiou":  # Eq. 11: normalized by the sum of weights, not by the count
        boxes = transform.apply_deltas(pairs[1], pairs[0])
        expected = focal_eiou_loss(boxes, pairs[2], reduction="weighted")
    else:  # Detectron2's moving-average normalizer, starting at 100 with momentum 0.9
        expected = expected_sum(loss_type, transform, *pairs) / (0.9 * 100 + 0.1 * 4)
    torch.testing.assert_close(losses["loss_box_reg"], 2.5 * expected)


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
def test_fcos_box_loss_matches_library(loss_type, event_storage):
    model = build_tiny_model("fcos", loss_type)  # box-loss weight 2.5
    positive = torch.tensor([True, True, True, False, True])
    labels = torch.where(positive, torch.tensor(1), torch.tensor(model.num_classes))
    logits = torch.zeros(1, len(ANCHORS), model.num_classes)
    centerness = torch.zeros(1, len(ANCHORS), 1)
    targets = Boxes(TARGETS) if hasattr(FCOS, "match_anchors") else TARGETS  # 0.6 / main
    losses = model.losses(
        [Boxes(ANCHORS)], [logits], [labels], [DELTAS[None]], [targets], [centerness]
    )
    transform = model.box2box_transform  # FCOS's linear (l, t, r, b) encoding
    pairs = (ANCHORS[positive], DELTAS[positive], TARGETS[positive])
    if loss_type == "focal_eiou":  # Eq. 11
        boxes = transform.apply_deltas(pairs[1], pairs[0])
        expected = focal_eiou_loss(boxes, pairs[2], reduction="weighted")
    else:  # Detectron2 FCOS's moving-average normalizer, starting at 300 with momentum 0.9
        expected = expected_sum(loss_type, transform, *pairs) / (0.9 * 300 + 0.1 * 4)
    torch.testing.assert_close(losses["loss_fcos_loc"], 2.5 * expected)


def test_retinanet_focal_eiou_without_eq11_uses_count_normalizer(event_storage):
    model = build_tiny_model("retinanet", "focal_eiou")
    model.box_loss.weighted = False
    positive = torch.ones(5, dtype=torch.bool)
    losses = retinanet_losses(model, ANCHORS, DELTAS, TARGETS, positive)
    boxes = model.box2box_transform.apply_deltas(DELTAS, ANCHORS)
    expected = focal_eiou_loss(boxes, TARGETS, reduction="sum") / (0.9 * 100 + 0.1 * 5)
    torch.testing.assert_close(losses["loss_box_reg"], expected)


@pytest.mark.parametrize("architecture", ["faster_rcnn", "cascade_rcnn"])
@pytest.mark.parametrize("loss_type", LOSS_TYPES)
def test_rcnn_box_loss_matches_library(architecture, loss_type):
    model = build_tiny_model(architecture, loss_type)
    predictors = model.roi_heads.box_predictor
    predictors = list(predictors) if architecture == "cascade_rcnn" else [predictors]
    assert all(type(p).__name__ == "FocalEIoUFastRCNNOutputLayers" for p in predictors)
    gt_classes = torch.tensor([0, 2, 1, 3, 0])  # class 3 = background (3 classes)
    foreground = gt_classes < 3
    for predictor in predictors:
        num_outputs = predictor.bbox_pred.out_features
        pred = DELTAS.repeat(1, num_outputs // 4)
        loss = predictor.box_reg_loss(ANCHORS, TARGETS, pred, gt_classes)
        transform = predictor.box2box_transform
        pairs = (ANCHORS[foreground], DELTAS[foreground], TARGETS[foreground])
        if loss_type == "focal_eiou":  # weights rescaled to mean 1 over the foreground
            boxes = transform.apply_deltas(pairs[1], pairs[0])
            expected = focal_eiou_loss(boxes, pairs[2], reduction="weighted") * 4 / 5
        else:
            expected = expected_sum(loss_type, transform, *pairs) / 5
        torch.testing.assert_close(loss, expected)


def test_rcnn_losses_apply_the_configured_weight(event_storage):
    model = build_tiny_model("faster_rcnn", "eiou")
    predictor = model.roi_heads.box_predictor
    predictor.loss_weight = {"loss_box_reg": 2.5}
    scores = torch.zeros(5, 4)
    deltas = DELTAS.repeat(1, 3)
    proposals = [make_proposals(ANCHORS, TARGETS, torch.tensor([0, 1, 2, 0, 1]))]
    losses = predictor.losses((scores, deltas), proposals)
    expected = box_regression_loss(
        "eiou", Box2BoxTransform((10.0, 10.0, 5.0, 5.0)).apply_deltas(DELTAS, ANCHORS), TARGETS
    ).sum()
    torch.testing.assert_close(losses["loss_box_reg"], 2.5 * expected / 5)


def make_proposals(proposal_boxes, gt_boxes, gt_classes):
    from detectron2.structures import Instances

    proposals = Instances((200, 200))
    proposals.proposal_boxes = Boxes(proposal_boxes)
    proposals.gt_boxes = Boxes(gt_boxes)
    proposals.gt_classes = gt_classes
    return proposals


@pytest.mark.parametrize("loss_type", ["smooth_l1", "focal_eiou", "diou"])
def test_rpn_box_loss_matches_library(loss_type, event_storage):
    model = build_tiny_model("faster_rcnn", loss_type)
    rpn = model.proposal_generator
    labels = torch.tensor([1, 1, 0, 1, -1])
    losses = rpn.losses([Boxes(ANCHORS)], [torch.zeros(1, 5)], [labels], [DELTAS[None]], [TARGETS])
    positive = labels == 1
    pairs = (ANCHORS[positive], DELTAS[positive], TARGETS[positive])
    normalizer = rpn.batch_size_per_image
    if loss_type == "focal_eiou":
        boxes = rpn.box2box_transform.apply_deltas(pairs[1], pairs[0])
        expected = focal_eiou_loss(boxes, pairs[2], reduction="weighted") * 3 / normalizer
    else:
        expected = expected_sum(loss_type, rpn.box2box_transform, *pairs) / normalizer
    weight = rpn.loss_weight["loss_rpn_loc"]
    torch.testing.assert_close(losses["loss_rpn_loc"], weight * expected)


def test_fcos_boxes_are_decoded_in_float32_under_amp():
    """Detectron2's Box2BoxTransformLinear decodes in the deltas' dtype: under AMP (bf16, fp16)
    that rounds pixel coordinates before the float32 loss, and overflows fp16 when a head
    diverges. The loss decodes them in float32: the same value as float32 deltas, finite."""
    from detectron2.modeling.box_regression import Box2BoxTransformLinear

    torch.manual_seed(0)
    transform = Box2BoxTransformLinear(normalize_by_size=True)
    centres = torch.rand(256, 2) * 240 + 8
    anchors = torch.cat([centres - 8, centres + 8], dim=1)
    deltas = (torch.rand(256, 4) * 3 + 0.5).to(torch.bfloat16)
    near = transform.apply_deltas(deltas.float(), anchors) + 0.25  # targets close to the boxes
    loss = BoxRegressionLoss("eiou").for_head(transform, "sum_of_weights")
    reference = loss(anchors, deltas.float(), near, 100.0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        autocast = loss(anchors, deltas, near, 100.0)
    assert autocast.dtype == torch.float32
    torch.testing.assert_close(autocast, reference, rtol=1e-3, atol=0)
    diverged = torch.full((256, 4), 5000.0, dtype=torch.float16)  # x 16 px overflows fp16
    assert torch.isfinite(loss(anchors, diverged, near, 100.0))


def test_retinanet_focal_siou_from_the_config_key_is_eq_11(event_storage):
    from detectron2.modeling import build_model

    cfg = tiny_cfg("retinanet", "siou")
    cfg.MODEL.FOCAL_EIOU.FOCAL_GAMMA = 0.5
    torch.manual_seed(0)
    model = build_model(cfg)
    model.box_reg_loss_weight = 2.5
    positive = torch.tensor([True, True, True, False, True])
    losses = retinanet_losses(model, ANCHORS, DELTAS, TARGETS, positive)
    boxes = model.box2box_transform.apply_deltas(DELTAS[positive], ANCHORS[positive])
    expected = box_regression_loss("siou", boxes, TARGETS[positive], "weighted", gamma=0.5)
    torch.testing.assert_close(losses["loss_box_reg"], 2.5 * expected)
    assert expected != box_regression_loss("siou", boxes, TARGETS[positive], "mean")


@pytest.mark.parametrize("gamma", [0.0, 1.0])
def test_rcnn_focal_ciou_from_the_config_key(gamma):
    from detectron2.modeling import build_model

    cfg = tiny_cfg("faster_rcnn", "ciou")
    cfg.MODEL.FOCAL_EIOU.FOCAL_GAMMA = gamma
    predictor = build_model(cfg).roi_heads.box_predictor
    gt_classes = torch.tensor([0, 2, 1, 3, 0])  # class 3 = background
    foreground = gt_classes < 3
    pred = DELTAS.repeat(1, predictor.bbox_pred.out_features // 4)
    loss = predictor.box_reg_loss(ANCHORS, TARGETS, pred, gt_classes)
    boxes = predictor.box2box_transform.apply_deltas(DELTAS[foreground], ANCHORS[foreground])
    if gamma:  # weights rescaled to mean 1 over the 4 foreground regions, normalized by all 5
        expected = box_regression_loss("ciou", boxes, TARGETS[foreground], "weighted", gamma=gamma)
        expected = expected * 4 / 5
    else:  # the plain loss
        expected = box_regression_loss("ciou", boxes, TARGETS[foreground], "sum") / 5
    torch.testing.assert_close(loss, expected)
