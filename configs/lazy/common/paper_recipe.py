# The paper's COCO training recipe (Sec. 5.2), as LazyConfig nodes for configs/lazy/*.py: COCO
# train2017 at a single scale of 800 px (as in ATSS), 16 images per batch, SGD with base LR 0.01,
# 90k iterations, LR x0.1 at 50k, 70k and 80k, ImageNet-pretrained ResNet-50 (Detectron2's model
# zoo weights). The box-loss weight (1.0 for l_n-norm losses, 2.5 for IoU losses) is set by
# focal_eiou_d2.lazy_config.use_box_loss in each model's file.
from detectron2 import model_zoo
from detectron2.config import LazyCall as L
from detectron2.solver import WarmupParamScheduler
from fvcore.common.param_scheduler import MultiStepParamScheduler

dataloader = model_zoo.get_config("common/data/coco.py").dataloader
dataloader.train.mapper.use_instance_mask = False
dataloader.train.mapper.augmentations[0].short_edge_length = (800,)
dataloader.train.total_batch_size = 16

optimizer = model_zoo.get_config("common/optim.py").SGD
optimizer.lr = 0.01

lr_multiplier = L(WarmupParamScheduler)(
    scheduler=L(MultiStepParamScheduler)(
        values=[1.0, 0.1, 0.01, 0.001], milestones=[50000, 70000, 80000], num_updates=90000
    ),
    warmup_length=1000 / 90000,
    warmup_factor=0.001,
)

train = model_zoo.get_config("common/train.py").train
train.max_iter = 90000
train.init_checkpoint = "detectron2://ImageNetPretrained/MSRA/R-50.pkl"
train.seed = -1
