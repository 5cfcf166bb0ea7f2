# FCOS R50-FPN (Detectron2's model-zoo FCOS, GIoU in its box branch) with Focal-EIoU instead, on
# the paper's recipe. The paper reports Focal-EIoU on the anchor-free ATSS and PAA (Table 3); FCOS
# is Detectron2's anchor-free detector. Its centerness branch and loss are unchanged.
from detectron2 import model_zoo

from focal_eiou_d2.lazy_config import group_norm, use_box_loss

from .common.paper_recipe import dataloader, lr_multiplier, optimizer, train

model = model_zoo.get_config("common/models/fcos.py").model
model.backbone.bottom_up.freeze_at = 2
model.head.norm = group_norm  # GroupNorm(32), as "GN"; see group_norm for why not the string
use_box_loss(model, "focal_eiou")

train.output_dir = "output/lazy/fcos_R_50_FPN_1x_focal_eiou"
