"""Detectron2 components using focal_eiou_d2's losses; importing registers them."""

from .backbone import (
    build_narrow_resnet_fpn_backbone,
    build_narrow_retinanet_resnet_fpn_backbone,
    narrow_resnet,
)
from .box_loss import BoxRegressionLoss
from .fast_rcnn import FocalEIoUFastRCNNOutputLayers
from .fcos import FocalEIoUFCOS
from .retinanet import FocalEIoURetinaNet
from .roi_heads import FocalEIoUCascadeROIHeads, FocalEIoUStandardROIHeads
from .rpn import FocalEIoURPN

__all__ = [
    "BoxRegressionLoss",
    "FocalEIoUCascadeROIHeads",
    "FocalEIoUFCOS",
    "FocalEIoUFastRCNNOutputLayers",
    "FocalEIoURPN",
    "FocalEIoURetinaNet",
    "FocalEIoUStandardROIHeads",
    "build_narrow_resnet_fpn_backbone",
    "build_narrow_retinanet_resnet_fpn_backbone",
    "narrow_resnet",
]
