"""Training and evaluation with Detectron2's engine: the config builders, the trainers,
checkpoints and output folders."""

from .checkpoint import WeightsError, WeightsMismatchError, load_trained_weights
from .run_config import LazyRunConfig, YamlRunConfig, load_run_config
from .run_dir import OutputDirError, claim_output_dir
from .setup import build_config, check_datasets_exist
from .trainer import FocalEIoUTrainer

__all__ = [
    "FocalEIoUTrainer",
    "LazyRunConfig",
    "OutputDirError",
    "WeightsError",
    "WeightsMismatchError",
    "YamlRunConfig",
    "build_config",
    "check_datasets_exist",
    "claim_output_dir",
    "load_run_config",
    "load_trained_weights",
]
