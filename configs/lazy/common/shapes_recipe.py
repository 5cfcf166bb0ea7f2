# The quickstart's recipe on the embedded shapes dataset, as LazyConfig nodes (the twin of
# configs/quickstart/Base-Quickstart-*.yaml): the one-class shapes data, 256 px images, 8 per
# batch, SGD with LR 0.02 after a 100-iteration linear warm-up, x0.1 at 700 and 830, 900
# iterations, on the CPU, seed 0. No pretrained weights exist offline, so every layer trains,
# with BatchNorm.
import detectron2.data.transforms as T
from detectron2 import model_zoo
from detectron2.config import LazyCall as L
from detectron2.solver import WarmupParamScheduler
from fvcore.common.param_scheduler import MultiStepParamScheduler

dataloader = model_zoo.get_config("common/data/coco.py").dataloader
dataloader.train.dataset.names = "shapes_1class_train"
dataloader.train.mapper.use_instance_mask = False
dataloader.train.mapper.augmentations = [
    L(T.ResizeShortestEdge)(short_edge_length=(256,), max_size=256, sample_style="choice"),
    L(T.RandomFlip)(horizontal=True),
]
dataloader.train.total_batch_size = 8
dataloader.train.num_workers = 1
dataloader.test.dataset.names = "shapes_1class_val"
dataloader.test.mapper.augmentations = [L(T.ResizeShortestEdge)(short_edge_length=256, max_size=256)]
dataloader.test.num_workers = 1

optimizer = model_zoo.get_config("common/optim.py").SGD
optimizer.lr = 0.02

MAX_ITER = 900
lr_multiplier = L(WarmupParamScheduler)(
    scheduler=L(MultiStepParamScheduler)(
        values=[1.0, 0.1, 0.01], milestones=[700, 830], num_updates=MAX_ITER
    ),
    warmup_length=100 / MAX_ITER,
    warmup_factor=0.001,
)

train = model_zoo.get_config("common/train.py").train
train.max_iter = MAX_ITER
train.checkpointer.period = 300
train.eval_period = 0
train.device = "cpu"
train.seed = 0
