# FCOS with a half-width ResNet-18 FPN and Focal-EIoU (gamma 0.5, Eq. 11, loss weight 2.5) on the
# embedded shapes dataset, trained from scratch on the CPU like the RetinaNet quickstart
# (configs/quickstart/retinanet_R_18_FPN_shapes_focal_eiou.yaml), whose sizes it copies: FPN of
# 64 channels on res3-res5 (P6/P7 from P5, as FCOS), a head of two 64-channel convolutions with BN.
from detectron2 import model_zoo
from detectron2.config import LazyCall as L
from detectron2.layers import ShapeSpec

from focal_eiou_d2.lazy_config import use_box_loss
from focal_eiou_d2.modeling import narrow_resnet

from ..common.shapes_recipe import dataloader, lr_multiplier, optimizer, train

CHANNELS = 64

model = model_zoo.get_config("common/models/fcos.py").model
model.backbone.bottom_up = L(narrow_resnet)(
    depth=18, stem_channels=32, res2_channels=32, norm="BN", out_features=["res3", "res4", "res5"]
)
model.backbone.out_channels = CHANNELS
model.backbone.top_block.in_channels = CHANNELS
model.head.input_shape = [ShapeSpec(channels=CHANNELS)] * 5
model.head.conv_dims = [CHANNELS, CHANNELS]
model.head.norm = "BN"
model.num_classes = 1
model.pixel_std = [57.375, 57.120, 58.395]
use_box_loss(model, "focal_eiou")

train.output_dir = "output/quickstart/fcos_focal_eiou"
