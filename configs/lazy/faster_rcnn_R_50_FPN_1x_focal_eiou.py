# Faster R-CNN R50-FPN with Focal-EIoU in the R-CNN box head, the paper's Table 3 row (AP 38.9), as
# a LazyConfig; configs/COCO-Detection/faster_rcnn_R_50_FPN_1x_focal_eiou.yaml is its YAML twin.
from detectron2 import model_zoo

from focal_eiou_d2.lazy_config import use_box_loss

from .common.paper_recipe import dataloader, lr_multiplier, optimizer, train

model = model_zoo.get_config("common/models/mask_rcnn_fpn.py").model
model.roi_heads.mask_in_features = None
model.roi_heads.mask_pooler = None
model.roi_heads.mask_head = None
model.backbone.bottom_up.freeze_at = 2
use_box_loss(model, "focal_eiou")

train.output_dir = "output/lazy/faster_rcnn_R_50_FPN_1x_focal_eiou"
