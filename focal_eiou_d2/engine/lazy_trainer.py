"""A trainer for LazyConfig (Python) configs, with the guarantees of :class:`FocalEIoUTrainer`."""

import weakref

import torch
from detectron2.config import instantiate
from detectron2.engine import AMPTrainer, SimpleTrainer, TrainerBase, create_ddp_model, hooks
from detectron2.engine.defaults import default_writers
from detectron2.evaluation import COCOEvaluator, inference_on_dataset, print_csv_format
from detectron2.utils import comm

from focal_eiou_d2.data.train_loader import build_lazy_train_loader

from .box_loss_stall import BoxLossStallWarning
from .checkpoint import TrainingCheckpointer
from .coco_evaluator import build_coco_evaluator
from .exact_resume import ExactResumeMixin, periodic_checkpointer


class LazyTrainer(ExactResumeMixin, TrainerBase):
    """Trains the ``model`` of a LazyConfig with its ``optimizer``, ``lr_multiplier``,
    ``dataloader`` and ``train`` nodes, as Detectron2's ``tools/lazyconfig_train_net.py`` does.

    Resumed runs continue exactly as uninterrupted ones would (see :class:`ExactResumeMixin`);
    the optimizer is checkpointed; every ``train.eval_period`` iterations and after the last one
    the model is evaluated on ``dataloader.test`` (a ``COCOEvaluator`` writes its detections to
    ``<output_dir>/inference/<dataset>``, with the fast C++ COCOeval only where Detectron2's
    compiled ops exist). Every process checkpoints (saving gathers their random states); only
    the main process writes checkpoints, prunes them (``train.checkpointer.max_to_keep``) and
    writes logs. A CPU model is wrapped in DDP without ``device_ids`` (gloo).
    """

    def __init__(self, cfg):
        """
        Args:
            cfg (DictConfig): a loaded LazyConfig (see ``focal_eiou_d2.engine.load_run_config``).
        """
        super().__init__()
        self.cfg = cfg
        model = instantiate(cfg.model).to(cfg.train.device)
        cfg.optimizer.params.model = model
        optimizer = instantiate(cfg.optimizer)
        self.data_loader = build_lazy_train_loader(cfg.dataloader.train, cfg.train.get("seed", -1))
        ddp = dict(cfg.train.ddp)
        if torch.device(cfg.train.device).type == "cpu":
            ddp.setdefault("device_ids", None)  # Detectron2 names the local GPU otherwise
        model = create_ddp_model(model, **ddp)
        trainer = AMPTrainer if cfg.train.amp.enabled else SimpleTrainer
        self._trainer = trainer(model, self.data_loader, optimizer)
        self.model = model
        self.checkpointer = TrainingCheckpointer(
            model, cfg.train.output_dir, trainer=weakref.proxy(self)
        )
        self.start_iter = 0
        self.max_iter = cfg.train.max_iter
        self.register_hooks(
            [
                hooks.IterationTimer(),
                hooks.LRScheduler(scheduler=instantiate(cfg.lr_multiplier)),
                periodic_checkpointer(self.checkpointer, **cfg.train.checkpointer),
                hooks.EvalHook(cfg.train.eval_period, self.test),
                BoxLossStallWarning(),
                (
                    hooks.PeriodicWriter(
                        default_writers(cfg.train.output_dir, self.max_iter),
                        period=cfg.train.log_period,
                    )
                    if comm.is_main_process()
                    else None
                ),
            ]
        )

    @property
    def optimizer(self):
        return self._trainer.optimizer

    @property
    def initial_weights(self):
        return self.cfg.train.init_checkpoint

    @property
    def output_dir(self):
        return self.cfg.train.output_dir

    def run_step(self):
        self._trainer.iter = self.iter
        self._trainer.run_step()

    def state_dict(self):
        state = super().state_dict()
        state["_trainer"] = self._trainer.state_dict()
        return {**state, **self.data_order_state()}

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        self._trainer.load_state_dict(state_dict["_trainer"])
        self.load_data_order_state(state_dict)

    def test(self):
        """Evaluate the model on ``dataloader.test``; returns the results (and keeps them)."""
        self.last_results = evaluate(self.cfg, self.model)
        return self.last_results

    def train(self):
        """Train from ``start_iter``; returns the results of the last evaluation (or None)."""
        self.prepare_training()
        super().train(self.start_iter, self.max_iter)
        return getattr(self, "last_results", None)


def evaluate(cfg, model):
    """Evaluate ``model`` on a LazyConfig's ``dataloader.test`` with its ``dataloader.evaluator``
    (a ``COCOEvaluator`` writes its detections to ``<output_dir>/inference/<dataset>``).

    Returns:
        dict: the evaluator's results, e.g. ``{"bbox": {"AP": ...}}``.
    """
    evaluator_node = cfg.dataloader.evaluator
    if evaluator_node.get("_target_") is COCOEvaluator:
        evaluator = build_coco_evaluator(cfg.train.output_dir, evaluator_node.dataset_name)
    else:
        evaluator = instantiate(evaluator_node)
    results = inference_on_dataset(model, instantiate(cfg.dataloader.test), evaluator)
    if comm.is_main_process():
        print_csv_format(results)
    return results
