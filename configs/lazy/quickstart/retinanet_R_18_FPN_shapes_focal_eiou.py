# RetinaNet with a half-width ResNet-18 FPN and Focal-EIoU (gamma 0.5, Eq. 11, loss weight 2.5) on
# the embedded shapes dataset, trained from scratch on the CPU: the LazyConfig counterpart of
# configs/quickstart/retinanet_R_18_FPN_shapes_focal_eiou.yaml. The model is the YAML one: FPN of
# 64 channels on res3-res5, P6/P7 from res5, a head of two 64-channel convolutions with BN, 9
# anchors per place from 16 px, the same matcher, pixel statistics and test settings; from the
# same seed both start with the same weights (tests/engine/test_lazy_quickstart_retinanet.py).
# The recipe is the YAML one too (configs/lazy/common/shapes_recipe.py), run by the LazyConfig
# trainer, into its own output folder. Where LazyConfig differs: a loss with a running mean
# (Wise-IoU v3) is given its momentum explicitly, e.g. use_box_loss(model, "wiou_v3",
# momentum=wiou_momentum(train.max_iter)), where a YAML config derives it from SOLVER.MAX_ITER.
from detectron2 import model_zoo
from detectron2.config import LazyCall as L
from detectron2.layers import ShapeSpec

from focal_eiou_d2.lazy_config import use_box_loss
from focal_eiou_d2.modeling import narrow_resnet

from ..common.shapes_recipe import dataloader, lr_multiplier, optimizer, train  # noqa: F401

CHANNELS = 64
RES2_CHANNELS = 32

model = model_zoo.get_config("common/models/retinanet.py").model
model.backbone.bottom_up = L(narrow_resnet)(
    depth=18,
    stem_channels=32,
    res2_channels=RES2_CHANNELS,
    norm="BN",
    out_features=["res3", "res4", "res5"],
)
model.backbone.out_channels = CHANNELS
model.backbone.top_block.in_channels = RES2_CHANNELS * 8  # res5
model.head.input_shape = [ShapeSpec(channels=CHANNELS)] * 5
model.head.conv_dims = [CHANNELS, CHANNELS]
model.head.norm = "BN"
# Objects span about 8 to 200 px in 256 px images: x * 2^(0, 1/3, 2/3) for x in 16 ... 256, the
# YAML config's numbers (rounded as there, so that the anchors are the same to the last bit).
model.anchor_generator.sizes = [
    [16, 20.1587368, 25.3984210],
    [32, 40.3174736, 50.7968419],
    [64, 80.6349472, 101.5936838],
    [128, 161.2698945, 203.1873676],
    [256, 322.5397891, 406.3747353],
]
model.num_classes = 1
model.pixel_mean = [103.530, 116.280, 123.675]
model.pixel_std = [57.375, 57.120, 58.395]
use_box_loss(model, "focal_eiou")

train.output_dir = "output/quickstart/retinanet_focal_eiou_lazy"
