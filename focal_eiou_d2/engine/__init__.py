"""Training and evaluation with Detectron2's engine: the config builders, the trainers,
checkpoints and output folders."""

from focal_eiou_d2.data import check_datasets_exist

from .checkpoint import WeightsError, WeightsMismatchError, load_trained_weights
from .run_config import (
    LazyRunConfig,
    RunConfig,
    YamlRunConfig,
    build_config,
    is_lazy_config,
    load_run_config,
    resolve_config_file,
)
from .run_dir import OutputDirError, claim_output_dir
from .trainer import FocalEIoUTrainer

__all__ = [
    "FocalEIoUTrainer",
    "LazyRunConfig",
    "RunConfig",
    "OutputDirError",
    "WeightsError",
    "WeightsMismatchError",
    "YamlRunConfig",
    "build_config",
    "check_datasets_exist",
    "claim_output_dir",
    "is_lazy_config",
    "load_run_config",
    "load_trained_weights",
    "resolve_config_file",
]
