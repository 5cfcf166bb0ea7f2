# RetinaNet R50-FPN with Focal-EIoU (gamma 0.5, Eq. 11), the paper's Table 1 row (AP 37.5), as a
# LazyConfig; configs/COCO-Detection/retinanet_R_50_FPN_1x_focal_eiou.yaml is its YAML twin.
from detectron2 import model_zoo

from focal_eiou_d2.lazy_config import use_box_loss

from .common.paper_recipe import dataloader, lr_multiplier, optimizer, train

model = model_zoo.get_config("common/models/retinanet.py").model
model.backbone.bottom_up.freeze_at = 2
use_box_loss(model, "focal_eiou")

train.output_dir = "output/lazy/retinanet_R_50_FPN_1x_focal_eiou"
