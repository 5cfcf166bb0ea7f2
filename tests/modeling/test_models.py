"""Every loss type trains every architecture: finite losses and gradients, empty images included."""

import pytest
import torch
from detectron2.modeling.meta_arch.fcos import FCOS
from tiny_models import ARCHITECTURES, build_tiny_model, make_inputs

from focal_eiou_d2.layers import BOX_LOSSES

BOX_LOSS_KEYS = {"loss_box_reg", "loss_rpn_loc", "loss_fcos_loc"}


def box_loss_values(losses):
    return [value for key, value in losses.items() if key.startswith(tuple(BOX_LOSS_KEYS))]


# Every loss on a dense head and on an R-CNN head (their losses differ); the other architectures,
# which reuse those heads' loss code, with one loss of each kind.
TRAINING_STEPS = [
    *((architecture, loss) for architecture in ("retinanet", "faster_rcnn") for loss in BOX_LOSSES),
    *(
        (architecture, loss)
        for architecture in ARCHITECTURES
        if architecture not in ("retinanet", "faster_rcnn")
        for loss in ("smooth_l1", "giou", "focal_eiou")
    ),
    # The losses with head inputs (an image size, a running mean) in the heads not covered above.
    *(
        (architecture, loss)
        for architecture in ("fcos", "cascade_rcnn")
        for loss in ("mpdiou", "wiou_v3")
    ),
]


# The modules that own a box loss in each architecture: the dense model; the RPN and the box
# predictor (one per Cascade stage).
EXPECTED_RUNNING_MEANS = {
    "retinanet": 1,
    "fcos": 1,
    "faster_rcnn": 2,
    "mask_rcnn": 2,
    "cascade_rcnn": 4,
}


@pytest.mark.parametrize("architecture, loss_type", TRAINING_STEPS)
def test_training_step_is_finite(architecture, loss_type, event_storage):
    model = build_tiny_model(architecture, loss_type)
    model.train()
    losses = model(make_inputs(with_masks=architecture == "mask_rcnn"))
    assert box_loss_values(losses), f"no box-regression loss among {sorted(losses)}"
    assert all(value > 0 for value in box_loss_values(losses)), losses
    for name, value in losses.items():
        assert torch.isfinite(value), f"{name} = {value}"
    sum(losses.values()).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    # Every head's running mean of 1 - IoU (wiou_v3) has moved from its initial 1.
    running_means = [b for name, b in model.named_buffers() if name.endswith("iou_loss_mean")]
    assert len(running_means) == (
        EXPECTED_RUNNING_MEANS[architecture] if loss_type == "wiou_v3" else 0
    )
    assert all(torch.isfinite(b) and b != 1 for b in running_means)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("loss_type", ["focal_eiou", "smooth_l1", "ciou"])
def test_images_without_annotations_give_zero_box_loss(architecture, loss_type, event_storage):
    if architecture == "fcos" and hasattr(FCOS, "match_anchors"):
        pytest.skip(
            "Detectron2 0.6's FCOS.match_anchors fails on images without boxes (main: fixed)"
        )
    model = build_tiny_model(architecture, loss_type)
    model.train()
    losses = model(make_inputs(boxes_per_image=0, with_masks=architecture == "mask_rcnn"))
    for value in box_loss_values(losses):
        assert value.item() == 0.0 and value.requires_grad
    sum(losses.values()).backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("architecture", ["retinanet", "fcos", "faster_rcnn"])
def test_inference_returns_instances(architecture):
    model = build_tiny_model(architecture, "focal_eiou")
    model.eval()
    inputs = [{"image": x["image"], "height": 96, "width": 80} for x in make_inputs()]
    with torch.no_grad():
        outputs = model(inputs)
    assert len(outputs) == 2
    for output in outputs:
        instances = output["instances"]
        assert instances.image_size == (96, 80)
        assert torch.isfinite(instances.pred_boxes.tensor).all()
        assert instances.has("scores") and instances.has("pred_classes")
