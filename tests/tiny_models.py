"""Tiny CPU Detectron2 models and synthetic inputs for the tests."""

from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
ARCHITECTURES = ("retinanet", "fcos", "faster_rcnn", "mask_rcnn", "cascade_rcnn")
NUM_CLASSES = 3
TINY_TRAINING_STEPS = 100  # the training length a tiny FCOS's Wise-IoU v3 momentum assumes


def tiny_cfg(architecture="retinanet", loss_type="smooth_l1"):
    """A Detectron2 config of a tiny R-18 FPN model on CPU, no weights, ``loss_type`` everywhere.

    Args:
        architecture (str): one of ``ARCHITECTURES`` but "fcos" (a LazyConfig-only model).
        loss_type (str): a name of ``focal_eiou_d2.layers.BOX_LOSSES``.

    Returns:
        CfgNode: not frozen, for tests to change.
    """
    from focal_eiou_d2.engine import build_config

    base = "Base-RetinaNet.yaml" if architecture == "retinanet" else "Base-RCNN-FPN.yaml"
    opts = [
        "MODEL.DEVICE", "cpu",
        "MODEL.WEIGHTS", "",
        "MODEL.RESNETS.DEPTH", "18",
        "MODEL.RESNETS.RES2_OUT_CHANNELS", "64",
        "MODEL.RESNETS.NORM", "BN",
        "MODEL.FPN.OUT_CHANNELS", "32",
        "MODEL.RETINANET.NUM_CONVS", "1",
        "MODEL.RETINANET.NUM_CLASSES", str(NUM_CLASSES),
        "MODEL.ROI_HEADS.NUM_CLASSES", str(NUM_CLASSES),
        "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "64",
        "MODEL.RPN.POST_NMS_TOPK_TRAIN", "100",
        "MODEL.RPN.POST_NMS_TOPK_TEST", "50",
        "MODEL.ROI_BOX_HEAD.FC_DIM", "64",
        "MODEL.ROI_MASK_HEAD.CONV_DIM", "16",
        "MODEL.ROI_MASK_HEAD.NUM_CONV", "1",
        "MODEL.RETINANET.BBOX_REG_LOSS_TYPE", loss_type,
        "MODEL.RPN.BBOX_REG_LOSS_TYPE", loss_type,
        "MODEL.ROI_BOX_HEAD.BBOX_REG_LOSS_TYPE", loss_type,
        "MODEL.MASK_ON", str(architecture == "mask_rcnn"),
        "INPUT.MIN_SIZE_TEST", "0",  # inputs are used at their own size
    ]  # fmt: skip
    if architecture == "cascade_rcnn":
        opts += ["MODEL.ROI_HEADS.NAME", "FocalEIoUCascadeROIHeads"]
        opts += ["MODEL.ROI_BOX_HEAD.CLS_AGNOSTIC_BBOX_REG", "True"]
    cfg = build_config(str(REPO / "configs" / base), opts, classes_from="config").clone()
    cfg.defrost()
    return cfg


def tiny_fcos(loss_type="giou"):
    """A tiny FCOS built explicitly, as a LazyConfig instantiates it (no global config)."""
    from detectron2.layers import ShapeSpec
    from detectron2.modeling.backbone import FPN
    from detectron2.modeling.backbone.fpn import LastLevelP6P7
    from detectron2.modeling.meta_arch.fcos import FCOSHead

    from focal_eiou_d2.layers import BOX_LOSSES, wiou_momentum
    from focal_eiou_d2.modeling import BoxRegressionLoss, FocalEIoUFCOS, narrow_resnet

    # A running mean's momentum by the paper's rule, as a LazyConfig gives it (wiou_v3).
    keeps_running_mean = "iou_loss_mean" in BOX_LOSSES[loss_type].head_inputs
    momentum = wiou_momentum(TINY_TRAINING_STEPS) if keeps_running_mean else None
    channels = 32
    backbone = FPN(
        bottom_up=narrow_resnet(18, 16, 16, "BN", ("res3", "res4", "res5")),
        in_features=["res3", "res4", "res5"],
        out_channels=channels,
        top_block=LastLevelP6P7(channels, channels, in_feature="p5"),
    )
    head = FCOSHead(
        input_shape=[ShapeSpec(channels=channels)] * 5,
        num_classes=NUM_CLASSES,
        conv_dims=[channels],
        norm="BN",
    )
    return FocalEIoUFCOS(
        backbone=backbone,
        head=head,
        head_in_features=["p3", "p4", "p5", "p6", "p7"],
        num_classes=NUM_CLASSES,
        pixel_mean=[103.53, 116.28, 123.675],
        pixel_std=[57.375, 57.120, 58.395],
        box_loss=BoxRegressionLoss(loss_type, momentum=momentum),
        box_reg_loss_weight=2.5,
    )


def make_inputs(num_images=2, size=128, boxes_per_image=2, seed=0, with_masks=False):
    """Detectron2 training inputs: random images with random boxes (and full-box masks).

    Args:
        num_images (int): images in the batch.
        size (int): image height and width.
        boxes_per_image (int): boxes of each image; 0 gives images without annotations.

    Returns:
        list[dict]: dicts with "image" (Tensor[3, size, size], uint8-valued float) and
        "instances" (Instances with gt_boxes, gt_classes and, if asked, gt_masks).
    """
    from detectron2.structures import BitMasks, Boxes, Instances

    generator = torch.Generator().manual_seed(seed)
    inputs = []
    for _ in range(num_images):
        image = torch.randint(0, 256, (3, size, size), generator=generator).float()
        corner = torch.rand(boxes_per_image, 2, generator=generator) * size * 0.6
        extent = 12 + torch.rand(boxes_per_image, 2, generator=generator) * size * 0.35
        boxes = torch.cat([corner, (corner + extent).clamp(max=size - 1)], dim=1)
        instances = Instances((size, size))
        instances.gt_boxes = Boxes(boxes)
        instances.gt_classes = torch.randint(0, 3, (boxes_per_image,), generator=generator)
        if with_masks:
            masks = torch.zeros(boxes_per_image, size, size, dtype=torch.bool)
            for mask, (x1, y1, x2, y2) in zip(masks, boxes.long().tolist(), strict=True):
                mask[y1:y2, x1:x2] = True
            instances.gt_masks = BitMasks(masks)
        inputs.append({"image": image, "instances": instances, "height": size, "width": size})
    return inputs


def build_tiny_model(architecture="retinanet", loss_type="smooth_l1", seed=0):
    from detectron2.modeling import build_model

    torch.manual_seed(seed)
    if architecture == "fcos":
        return tiny_fcos(loss_type)
    return build_model(tiny_cfg(architecture, loss_type))


# Overrides that shrink a configs/quickstart run to seconds on the mini shapes dataset.
SMOKE_OPTS = [
    "DATASETS.TRAIN", "('shapes_mini_train',)",
    "DATASETS.TEST", "('shapes_mini_val',)",
    "INPUT.MIN_SIZE_TRAIN", "(128,)",
    "INPUT.MAX_SIZE_TRAIN", "128",
    "INPUT.MIN_SIZE_TEST", "128",
    "INPUT.MAX_SIZE_TEST", "128",
    "SOLVER.IMS_PER_BATCH", "2",
    "SOLVER.MAX_ITER", "2",
    "SOLVER.WARMUP_ITERS", "1",
    "SOLVER.STEPS", "()",
    "DATALOADER.NUM_WORKERS", "0",
    # an untrained model scores below the default 0.05: keep every detection so AP is finite
    "MODEL.RETINANET.SCORE_THRESH_TEST", "0.0",
    "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0",
]  # fmt: skip

# The same for a configs/lazy/quickstart LazyConfig, as key=value overrides.
LAZY_SMOKE_OPTS = [
    "dataloader.train.dataset.names=shapes_mini_train",
    "dataloader.test.dataset.names=shapes_mini_val",
    "dataloader.train.mapper.augmentations.0.short_edge_length=[128]",
    "dataloader.train.mapper.augmentations.0.max_size=128",
    "dataloader.test.mapper.augmentations.0.short_edge_length=128",
    "dataloader.test.mapper.augmentations.0.max_size=128",
    "dataloader.train.total_batch_size=2",
    "dataloader.train.num_workers=0",
    "dataloader.test.num_workers=0",
    "train.max_iter=2",
    "model.test_score_thresh=0.0",
]
