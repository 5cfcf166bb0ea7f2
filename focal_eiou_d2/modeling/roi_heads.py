"""R-CNN ROI heads whose box predictors use focal_eiou_d2's box-regression losses."""

from detectron2.modeling import ROI_HEADS_REGISTRY, StandardROIHeads
from detectron2.modeling.roi_heads import CascadeROIHeads

from .fast_rcnn import FocalEIoUFastRCNNOutputLayers


@ROI_HEADS_REGISTRY.register()
class FocalEIoUStandardROIHeads(StandardROIHeads):
    """``StandardROIHeads`` (Faster and Mask R-CNN) with a ``FocalEIoUFastRCNNOutputLayers``."""

    @classmethod
    def _init_box_head(cls, cfg, input_shape):
        ret = super()._init_box_head(cfg, input_shape)
        ret["box_predictor"] = FocalEIoUFastRCNNOutputLayers(cfg, ret["box_head"].output_shape)
        return ret


@ROI_HEADS_REGISTRY.register()
class FocalEIoUCascadeROIHeads(CascadeROIHeads):
    """``CascadeROIHeads`` whose every stage uses a ``FocalEIoUFastRCNNOutputLayers``."""

    @classmethod
    def _init_box_head(cls, cfg, input_shape):
        ret = super()._init_box_head(cfg, input_shape)
        ret["box_predictors"] = [
            FocalEIoUFastRCNNOutputLayers(
                cfg, head.output_shape, box2box_transform=predictor.box2box_transform
            )
            for head, predictor in zip(ret["box_heads"], ret["box_predictors"], strict=True)
        ]
        return ret
