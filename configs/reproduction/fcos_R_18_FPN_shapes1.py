# The reproduction protocol (docs/reproduction.md) with FCOS: the quickstart-sized FCOS
# (configs/lazy/quickstart/fcos_R_18_FPN_shapes_focal_eiou.py) on the one-class shapes data, with
# the RetinaNet protocol's schedule (retinanet_R_18_FPN_shapes1.yaml). Every run starts from the
# same shared pretrained ResNet as the RetinaNet runs (pretrain_retinanet_R_18_FPN_shapes1.yaml,
# passed by the ablation runner's --pretrain), which stays frozen, as the paper's detectors all
# start from one ImageNet ResNet-50; FPN and head train from each run's seed with the loss under
# test. GIoU is FCOS's own box loss in Detectron2.
from focal_eiou_d2.lazy_config import use_box_loss

from ..lazy.common.shapes_recipe import dataloader, lr_multiplier, optimizer, train
from ..lazy.quickstart.fcos_R_18_FPN_shapes_focal_eiou import model

model.backbone.bottom_up.freeze_at = 5
use_box_loss(model, "giou")

MAX_ITER = 600
lr_multiplier.scheduler.milestones = [450, 550]
lr_multiplier.scheduler.num_updates = MAX_ITER
lr_multiplier.warmup_length = 50 / MAX_ITER
train.max_iter = MAX_ITER
train.checkpointer.period = 200
train.output_dir = "output/reproduction/fcos_run"
