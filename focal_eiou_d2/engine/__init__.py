"""Training and evaluation with Detectron2's engine."""

from .trainer import FocalEIoUTrainer, check_datasets_exist, setup_cfg

__all__ = ["FocalEIoUTrainer", "check_datasets_exist", "setup_cfg"]
