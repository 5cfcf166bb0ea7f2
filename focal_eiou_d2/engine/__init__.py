"""Training and evaluation with Detectron2's engine: the config builder, the trainer, checkpoints
and output folders."""

from .checkpoint import WeightsMismatchError, load_trained_weights
from .run_dir import OutputDirError, claim_output_dir, config_digest
from .setup import build_config, check_datasets_exist
from .trainer import FocalEIoUTrainer

__all__ = [
    "FocalEIoUTrainer",
    "OutputDirError",
    "WeightsMismatchError",
    "build_config",
    "check_datasets_exist",
    "claim_output_dir",
    "config_digest",
    "load_trained_weights",
]
