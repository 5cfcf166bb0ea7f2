"""The zoo's losses with head inputs in the heads: MPDIoU gets each box's own image size, Wise-IoU
v3 keeps its running mean of 1 - IoU as a buffer of the module that owns the loss (updated alike on
every process, saved in checkpoints)."""

import pytest
import torch
from detectron2.modeling import build_model
from detectron2.modeling.box_regression import Box2BoxTransform
from detectron2.modeling.meta_arch.fcos import FCOS
from detectron2.structures import Boxes, Instances
from gloo_processes import finish_gloo, init_gloo, run_processes
from tiny_models import build_tiny_model, make_inputs, tiny_cfg

from focal_eiou_d2.engine.checkpoint import TrainingCheckpointer
from focal_eiou_d2.layers import iou_loss, mpdiou_loss, wiou_momentum, wiou_v3_loss
from focal_eiou_d2.modeling import BoxRegressionLoss
from focal_eiou_d2.modeling.box_loss import step_image_sizes

# Two images of different sizes (height, width) sharing 4 anchors; image 0 has 3 positives,
# image 1 has 2.
IMAGE_SIZES = [(96, 128), (128, 80)]
ANCHORS = torch.tensor([[10.0, 10, 50, 40], [30, 20, 90, 100], [0, 0, 32, 32], [40, 50, 70, 90]])
TARGETS = torch.tensor(
    [
        [[12.0, 8, 55, 45], [25, 30, 95, 90], [4, 2, 30, 36], [0, 0, 1, 1]],
        [[0.0, 0, 1, 1], [28, 25, 75, 110], [0, 0, 1, 1], [35, 45, 78, 100]],
    ]
)
POSITIVE = torch.tensor([[True, True, True, False], [False, True, False, True]])
DELTAS = torch.linspace(-0.3, 0.3, 32).reshape(2, 4, 4)
# FCOS.losses takes the matched boxes as Boxes on Detectron2 0.6, as tensors on main.
FCOS_TAKES_BOXES = hasattr(FCOS, "match_anchors")


def expected_mpdiou_sum(transform, anchors, deltas, targets, positive, image_sizes):
    """The MPDIoU loss summed over the positives, each image's with its own size."""
    total = 0
    for image, size in enumerate(image_sizes):
        keep = positive[image]
        boxes = transform.apply_deltas(deltas[image][keep], anchors[keep])
        total = total + mpdiou_loss(boxes, targets[image][keep], size, reduction="sum")
    return total


def dense_box_loss(architecture, image_sizes):
    """The box loss of a dense head's ``losses`` on the two images, within the step's sizes."""
    model = build_tiny_model(architecture, "mpdiou")
    labels = [torch.where(p, 0, model.num_classes) for p in POSITIVE]
    logits = [torch.zeros(2, 4, model.num_classes)]
    targets = list(TARGETS)
    with step_image_sizes(model, image_sizes):
        if architecture == "retinanet":
            model.box_reg_loss_weight = 1.0
            loss = model.losses([Boxes(ANCHORS)], logits, labels, [DELTAS], targets)
            return model, loss["loss_box_reg"], 0.9 * 100 + 0.1 * 5
        if FCOS_TAKES_BOXES:
            targets = [Boxes(t) for t in targets]
        centerness = [torch.zeros(2, 4, 1)]
        loss = model.losses([Boxes(ANCHORS)], logits, labels, [DELTAS], targets, centerness)
        return model, loss["loss_fcos_loc"] / 2.5, 0.9 * 300 + 0.1 * 5


@pytest.mark.parametrize("architecture", ["retinanet", "fcos"])
def test_dense_mpdiou_uses_each_images_own_size(architecture, event_storage):
    model, loss, normalizer = dense_box_loss(architecture, IMAGE_SIZES)
    expected = expected_mpdiou_sum(
        model.box2box_transform, ANCHORS, DELTAS, TARGETS, POSITIVE, IMAGE_SIZES
    )
    torch.testing.assert_close(loss, expected / normalizer)
    padded = expected_mpdiou_sum(
        model.box2box_transform, ANCHORS, DELTAS, TARGETS, POSITIVE, [(128, 128)] * 2
    )
    assert not torch.isclose(loss, padded / normalizer)


def test_rpn_mpdiou_uses_each_images_own_size(event_storage):
    rpn = build_tiny_model("faster_rcnn", "mpdiou").proposal_generator
    labels = [p.long() for p in POSITIVE]  # 1 positive, 0 negative
    with step_image_sizes(rpn, IMAGE_SIZES):
        losses = rpn.losses([Boxes(ANCHORS)], [torch.zeros(2, 4)], labels, [DELTAS], list(TARGETS))
    expected = expected_mpdiou_sum(
        rpn.box2box_transform, ANCHORS, DELTAS, TARGETS, POSITIVE, IMAGE_SIZES
    )
    weight = rpn.loss_weight["loss_rpn_loc"]
    torch.testing.assert_close(
        losses["loss_rpn_loc"], weight * expected / (rpn.batch_size_per_image * 2)
    )


@pytest.mark.parametrize("architecture", ["faster_rcnn", "cascade_rcnn"])
def test_rcnn_mpdiou_uses_each_regions_own_image_size(architecture, event_storage):
    model = build_tiny_model(architecture, "mpdiou")
    predictors = model.roi_heads.box_predictor
    predictors = list(predictors) if architecture == "cascade_rcnn" else [predictors]
    proposals = []
    for image, size in enumerate(IMAGE_SIZES):
        regions = Instances(size)
        regions.proposal_boxes = Boxes(ANCHORS)
        regions.gt_boxes = Boxes(TARGETS[image])
        regions.gt_classes = torch.where(POSITIVE[image], 1, 3)  # class 3 = background
        proposals.append(regions)
    for predictor in predictors:
        predictor.loss_weight = {"loss_box_reg": 1.0}
        deltas = DELTAS.reshape(8, 4).repeat(1, predictor.bbox_pred.out_features // 4)
        losses = predictor.losses((torch.zeros(8, 4), deltas), proposals)
        expected = expected_mpdiou_sum(
            predictor.box2box_transform, ANCHORS, DELTAS, TARGETS, POSITIVE, IMAGE_SIZES
        )
        torch.testing.assert_close(losses["loss_box_reg"], expected / 8)
        assert predictor.step_image_sizes is None  # only during the call


def inputs_of_two_sizes():
    """Two training inputs of the sizes IMAGE_SIZES (which Detectron2 pads to 128 x 128)."""
    inputs = make_inputs(num_images=2, size=128)
    for item, (height, width) in zip(inputs, IMAGE_SIZES, strict=True):
        instances = Instances((height, width))
        boxes = item["instances"].gt_boxes.clone()
        boxes.clip((height, width))
        instances.gt_boxes = boxes
        instances.gt_classes = item["instances"].gt_classes
        item.update(image=item["image"][:, :height, :width], instances=instances)
        item.update(height=height, width=width)
    return inputs


@pytest.mark.parametrize("architecture", ["retinanet", "fcos", "faster_rcnn"])
def test_a_training_step_hands_the_unpadded_sizes_to_the_dense_loss(
    architecture, event_storage, monkeypatch
):
    model = build_tiny_model(architecture, "mpdiou")
    model.train()
    head = model.proposal_generator if architecture == "faster_rcnn" else model
    seen = []
    dense = head.box_loss.dense

    def recording_dense(*args, **kwargs):
        seen.append(kwargs["image_sizes"])
        return dense(*args, **kwargs)

    monkeypatch.setattr(head.box_loss, "dense", recording_dense)
    losses = model(inputs_of_two_sizes())
    assert all(torch.isfinite(value) for value in losses.values())
    assert len(seen) == 1
    torch.testing.assert_close(seen[0], torch.tensor(IMAGE_SIZES, dtype=torch.float32))
    assert head.step_image_sizes is None


def test_losses_without_image_size_pay_nothing_for_it(event_storage):
    model = build_tiny_model("retinanet", "giou")
    with step_image_sizes(model, IMAGE_SIZES):
        assert model.step_image_sizes is None


MOMENTUM = 0.25


def wiou_head():
    """A module owning a Wise-IoU v3 loss with its running mean, as a head does."""
    loss = BoxRegressionLoss("wiou_v3", Box2BoxTransform((1.0, 1.0, 1.0, 1.0)), momentum=MOMENTUM)
    head = torch.nn.Module()
    loss.register_state(head)
    return loss, head


def pairs(count, seed):
    """Anchors, predicted deltas and targets of ``count`` positives."""
    generator = torch.Generator().manual_seed(seed)
    corner = torch.rand(count, 2, generator=generator) * 100
    anchors = torch.cat([corner, corner + 20 + torch.rand(count, 2, generator=generator) * 50], 1)
    targets = anchors + torch.randn(count, 4, generator=generator) * 8
    deltas = torch.randn(count, 4, generator=generator) * 0.2
    return anchors, deltas, targets


def test_running_mean_moves_toward_the_batch_mean_and_the_loss_uses_the_updated_one():
    loss, head = wiou_head()
    assert head.iou_loss_mean.item() == 1.0  # the authors' initial value
    anchors, deltas, targets = pairs(6, seed=0)
    boxes = loss.box2box_transform.apply_deltas(deltas, anchors)
    expected_mean = torch.tensor(1.0)
    for _ in range(2):
        value = loss(anchors, deltas, targets, 4.0, head=head)
        batch_mean = iou_loss(boxes, targets, reduction="mean")
        expected_mean = (1 - MOMENTUM) * expected_mean + MOMENTUM * batch_mean
        torch.testing.assert_close(head.iou_loss_mean, expected_mean)
        expected = wiou_v3_loss(boxes, targets, head.iou_loss_mean.clone(), reduction="sum") / 4
        torch.testing.assert_close(value, expected)
    head.eval()  # evaluation leaves the state as it is
    loss(anchors, deltas, targets, 4.0, head=head)
    loss(*(t[:0] for t in (anchors, deltas, targets)), 4.0, head=head)
    torch.testing.assert_close(head.iou_loss_mean, expected_mean)
    head.train()  # a batch without positives too
    loss(*(t[:0] for t in (anchors, deltas, targets)), 4.0, head=head)
    torch.testing.assert_close(head.iou_loss_mean, expected_mean)


def test_yaml_momentum_follows_the_papers_rule_over_max_iter():
    cfg = tiny_cfg("cascade_rcnn", "wiou_v3")
    cfg.SOLVER.MAX_ITER = 300
    model = build_model(cfg)
    owners = [model.proposal_generator, *model.roi_heads.box_predictor]
    assert [owner.box_loss.momentum for owner in owners] == [wiou_momentum(300)] * 4
    keys = [key for key in model.state_dict() if key.endswith("iou_loss_mean")]
    assert keys == [
        "proposal_generator.iou_loss_mean",
        *(f"roi_heads.box_predictor.{stage}.iou_loss_mean" for stage in range(3)),
    ]
    cfg.SOLVER.MAX_ITER = 0
    with pytest.raises(ValueError, match="SOLVER.MAX_ITER = 0"):
        build_model(cfg)


def test_other_losses_keep_no_state():
    model = build_tiny_model("faster_rcnn", "giou")
    assert not [key for key in model.state_dict() if key.endswith("iou_loss_mean")]
    with pytest.raises(ValueError, match="momentum must be None"):
        BoxRegressionLoss("giou", momentum=0.1)
    with pytest.raises(ValueError, match="needs its momentum"):
        BoxRegressionLoss("wiou_v3")
    with pytest.raises(ValueError, match="in \\(0, 1\\]"):
        BoxRegressionLoss("wiou_v3", momentum=0.0)


def test_checkpoints_save_and_restore_the_running_means(tmp_path):
    model = build_tiny_model("cascade_rcnn", "wiou_v3")
    buffers = [b for name, b in model.named_buffers() if name.endswith("iou_loss_mean")]
    for index, buffer in enumerate(buffers):
        buffer.fill_(0.1 * (index + 2))
    TrainingCheckpointer(model, str(tmp_path)).save("model_0000009")
    resumed = build_tiny_model("cascade_rcnn", "wiou_v3", seed=1)
    assert TrainingCheckpointer(resumed, str(tmp_path)).resume_training("") is not None
    restored = [b for name, b in resumed.named_buffers() if name.endswith("iou_loss_mean")]
    torch.testing.assert_close(restored, buffers)


# Per process: the positives of each of two steps (rank 1 has none in the second).
RANK_PAIRS = {0: ((5, 10), (3, 11)), 1: ((2, 12), (0, 13))}


def running_mean_worker(rank, init_file, result_file):
    init_gloo(rank, 2, init_file)
    loss, head = wiou_head()
    for count, seed in RANK_PAIRS[rank]:
        loss(*pairs(count, seed), 1.0, head=head)
    torch.save(head.iou_loss_mean, f"{result_file}.{rank}")
    finish_gloo()


@pytest.mark.slow
def test_two_processes_with_different_batches_hold_the_same_running_mean(tmp_path):
    result_file = str(tmp_path / "result")
    run_processes(running_mean_worker, args=(str(tmp_path / "init"), result_file))
    means = [torch.load(f"{result_file}.{rank}") for rank in range(2)]
    torch.testing.assert_close(means[0], means[1], rtol=0, atol=0)
    loss, head = wiou_head()  # one process with the global batch of each step
    for step in range(2):
        batch = [pairs(*RANK_PAIRS[rank][step]) for rank in range(2)]
        loss(*(torch.cat(parts) for parts in zip(*batch, strict=True)), 1.0, head=head)
    torch.testing.assert_close(means[0], head.iou_loss_mean)
    assert means[0] != 1
