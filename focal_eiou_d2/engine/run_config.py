"""One interface over the two kinds of Detectron2 config, so that every tool takes either.

- a YAML config (``.yaml``): a yacs ``CfgNode``, overrides as ``KEY VALUE`` pairs (Detectron2's
  ``train_net.py`` convention), trained by :class:`FocalEIoUTrainer`;
- a LazyConfig (``.py``): a Python file of ``LazyCall`` nodes, overrides as ``key=value``
  (Detectron2's ``lazyconfig_train_net.py`` convention), trained by :class:`LazyTrainer`.

:func:`load_run_config` tells them apart by the extension. Both give the same guarantees: this
project's config keys and checks, ``--coco-dataset`` datasets registered first, the class count of
the training data (or of the run that wrote the weights), and a digest of everything but the
output folder.
"""

import copy
import hashlib
import logging
import re

import detectron2.data.transforms as T
import torch
from detectron2.config import LazyConfig, instantiate
from detectron2.data import MetadataCatalog, build_detection_test_loader
from detectron2.modeling import build_model

from focal_eiou_d2.config import box_loss_node, paper_loss_weight
from focal_eiou_d2.data import dataset_classes, num_classes_for, register_coco_datasets
from focal_eiou_d2.lazy_config import box_loss_nodes

from .lazy_overrides import apply_overrides
from .run_dir import run_classes
from .setup import build_config, class_count_node, resolve_config_file

logger = logging.getLogger(__name__)

LAZY_EXTENSION = ".py"


def load_run_config(config_file, overrides=(), **options):
    """The config of ``config_file`` with ``overrides``, as a :class:`YamlRunConfig` or a
    :class:`LazyRunConfig` (by the file's extension).

    Args:
        config_file (str): a ``.yaml`` or ``.py`` config (found relative to the project's
            checkout too).
        overrides (list[str]): ``KEY VALUE ...`` for YAML, ``key=value ...`` for LazyConfig.
        options: ``output_dir``, ``weights``, ``coco_datasets``, ``classes_from`` and
            ``cpu_fallback``, as in :func:`focal_eiou_d2.engine.build_config`.

    Raises:
        ValueError, KeyError, FileNotFoundError, DatasetError: a bad config or override.
    """
    kind = LazyRunConfig if config_file.endswith(LAZY_EXTENSION) else YamlRunConfig
    return kind.load(config_file, list(overrides), **options)


class YamlRunConfig:
    """A YAML config: a frozen ``CfgNode`` (``.cfg``)."""

    kind = "yaml"
    SEED_KEY = "SEED"
    OUTPUT_KEY = "OUTPUT_DIR"
    WEIGHTS_KEY = "MODEL.WEIGHTS"
    CONFIG_NAME = "config.yaml"

    def __init__(self, cfg, config_file):
        self.cfg = cfg
        self.config_file = config_file

    @classmethod
    def load(cls, config_file, overrides, **kwargs):
        return cls(build_config(config_file, overrides, **kwargs), config_file)

    @staticmethod
    def override(key, value):
        """One override in this kind's command-line form."""
        return [key, str(value)]

    @property
    def output_dir(self):
        return self.cfg.OUTPUT_DIR

    @property
    def seed(self):
        return self.cfg.SEED

    @property
    def device(self):
        return self.cfg.MODEL.DEVICE

    @property
    def weights(self):
        return self.cfg.MODEL.WEIGHTS

    @property
    def train_datasets(self):
        return tuple(self.cfg.DATASETS.TRAIN)

    @property
    def test_datasets(self):
        return tuple(self.cfg.DATASETS.TEST)

    @property
    def architecture(self):
        return self.cfg.MODEL.META_ARCHITECTURE

    @property
    def loss_type(self):
        return self.cfg.MODEL[box_loss_node(self.cfg)].BBOX_REG_LOSS_TYPE

    @property
    def num_classes(self):
        """The head's class count."""
        return self.cfg.MODEL[class_count_node(self.cfg)].NUM_CLASSES

    @staticmethod
    def score_threshold_overrides(threshold):
        """Overrides that keep every detection scoring at least ``threshold``."""
        keys = ("MODEL.RETINANET.SCORE_THRESH_TEST", "MODEL.ROI_HEADS.SCORE_THRESH_TEST")
        return [item for key in keys for item in (key, str(threshold))]

    def loss_overrides(self, loss_type, weight=None):
        """Overrides that make the model train with ``loss_type`` (weight: the paper's)."""
        node = f"MODEL.{box_loss_node(self.cfg)}"
        weight = paper_loss_weight(loss_type) if weight is None else weight
        return [
            f"{node}.BBOX_REG_LOSS_TYPE",
            loss_type,
            f"{node}.BBOX_REG_LOSS_WEIGHT",
            str(weight),
        ]

    def text(self):
        """The whole config as YAML (what ``config.yaml`` of a run holds)."""
        return self.cfg.dump()

    def digest(self):
        """A short hash of the config without its output folder (a moved run stays valid)."""
        cfg = self.cfg.clone()
        cfg.defrost()
        cfg.OUTPUT_DIR = ""
        return hashlib.sha256(cfg.dump().encode()).hexdigest()[:16]

    def build_model(self):
        return build_model(self.cfg)

    def build_trainer(self):
        from .trainer import FocalEIoUTrainer

        return FocalEIoUTrainer(self.cfg)

    def build_test_loader(self, dataset_name):
        return build_detection_test_loader(self.cfg, dataset_name)

    def evaluate(self, model):
        """COCO evaluation of ``model`` on the test datasets (results by dataset if several)."""
        from .trainer import FocalEIoUTrainer

        return FocalEIoUTrainer.test(self.cfg, model)

    def test_augmentation(self):
        """The resize of the test images (Detectron2's ``DefaultPredictor``'s)."""
        size = self.cfg.INPUT.MIN_SIZE_TEST
        return T.ResizeShortestEdge([size, size], self.cfg.INPUT.MAX_SIZE_TEST)

    @property
    def input_format(self):
        return self.cfg.INPUT.FORMAT


class LazyRunConfig:
    """A LazyConfig: the loaded ``DictConfig`` (``.cfg``), with ``train.output_dir``,
    ``train.seed``, ``train.device``, ``dataloader.train`` / ``dataloader.test`` and ``model``."""

    kind = "lazy"
    SEED_KEY = "train.seed"
    OUTPUT_KEY = "train.output_dir"
    WEIGHTS_KEY = "train.init_checkpoint"
    CONFIG_NAME = "config.py"

    def __init__(self, cfg, config_file):
        self.cfg = cfg
        self.config_file = config_file

    @classmethod
    def load(
        cls,
        config_file,
        overrides,
        *,
        output_dir=None,
        weights=None,
        coco_datasets=(),
        classes_from="train",
        cpu_fallback=False,
    ):
        import focal_eiou_d2.data  # noqa: F401  registers the embedded datasets

        bad = [item for item in overrides if "=" not in item]
        if bad:
            raise ValueError(
                f"LazyConfig overrides must be key=value (options such as --resume go before "
                f"them), got {bad}"
            )
        register_coco_datasets(coco_datasets)
        cfg = LazyConfig.load(resolve_config_file(config_file))
        cfg = apply_overrides(cfg, overrides, optional_keys=(cls.SEED_KEY,))
        for key in ("model", "train", "dataloader"):
            if key not in cfg:
                raise ValueError(f"LazyConfig {config_file} has no {key!r}")
        if output_dir:
            cfg.train.output_dir = output_dir
        if weights is not None:
            cfg.train.init_checkpoint = weights
        config = cls(cfg, config_file)
        if classes_from != "config":
            config._follow_classes(classes_from, overrides)
        if cpu_fallback and config.device.startswith("cuda") and not torch.cuda.is_available():
            if "train.device" in {item.split("=", 1)[0] for item in overrides}:
                raise ValueError(f"train.device={config.device} was asked for; CUDA is unavailable")
            logger.info("CUDA is unavailable: running %s on the CPU", config_file)
            cfg.train.device = "cpu"
        return config

    @staticmethod
    def override(key, value):
        return [f"{key}={value}"]

    @property
    def class_count_key(self):
        """The key of the head's class count: ``model.num_classes`` (RetinaNet, FCOS) or
        ``model.roi_heads.num_classes`` (R-CNN)."""
        return (
            "model.num_classes"
            if "num_classes" in self.cfg.model
            else "model.roi_heads.num_classes"
        )

    def _follow_classes(self, classes_from, overrides):
        classes = run_classes(self.weights) if classes_from == "run" else None
        if classes is None and self.train_datasets:
            classes = dataset_classes(self.train_datasets)
        if classes is not None:
            key = self.class_count_key
            explicit = key in {item.split("=", 1)[0] for item in overrides}
            value = num_classes_for(len(classes), key, self.num_classes, explicit)
            self.cfg = LazyConfig.apply_overrides(self.cfg, [f"{key}={value}"])

    @property
    def output_dir(self):
        return self.cfg.train.output_dir

    @property
    def seed(self):
        return self.cfg.train.get("seed", -1)

    @property
    def device(self):
        return self.cfg.train.device

    @property
    def weights(self):
        return self.cfg.train.init_checkpoint

    @property
    def train_datasets(self):
        return _names(self.cfg.dataloader.train.dataset.names)

    @property
    def test_datasets(self):
        return _names(self.cfg.dataloader.test.dataset.names)

    @property
    def architecture(self):
        return self.cfg.model._target_.__name__

    @property
    def num_classes(self):
        """The head's class count."""
        return _get(self.cfg, self.class_count_key)

    def score_threshold_overrides(self, threshold):
        """Overrides that keep every detection scoring at least ``threshold`` (the score
        thresholds of the dense head, or of every R-CNN box predictor)."""
        paths = [
            path for path in _paths(self.cfg.model, "model") if path.endswith(".test_score_thresh")
        ]
        return [f"{path}={threshold}" for path in paths]

    @property
    def loss_type(self):
        nodes = box_loss_nodes(self.cfg.model)
        if not nodes:
            return "Detectron2's own"
        return _get(self.cfg, nodes[0]).loss_type

    def loss_overrides(self, loss_type, weight=None):
        """Overrides of every box-loss node of the model (found in the model, not by name)."""
        nodes = box_loss_nodes(self.cfg.model)
        if not nodes:
            raise ValueError(
                f"{self.config_file}: the model has no box loss of focal_eiou_d2; call "
                "focal_eiou_d2.lazy_config.use_box_loss(model, ...) in the config"
            )
        weight = paper_loss_weight(loss_type) if weight is None else weight
        overrides = []
        for node in nodes:
            owner = node.rsplit(".", 1)[0]
            overrides.append(f"{node}.loss_type={loss_type}")
            if "box_reg_loss_weight" in _get(self.cfg, owner):
                overrides.append(f"{owner}.box_reg_loss_weight={weight}")
            else:
                overrides.append(f"{owner}.loss_weight.loss_box_reg={weight}")
        return overrides

    def text(self):
        """The whole config as Python code (what ``config.py`` of a run holds), with functions
        by name (their addresses would change the digest from one process to the next)."""
        return re.sub(
            r"<function (\S+) at 0x[0-9a-f]+>", r"<function \1>", LazyConfig.to_py(self.cfg)
        )

    def build_model(self):
        model = instantiate(self.cfg.model)
        return model.to(self.device)

    def build_trainer(self):
        from .lazy_trainer import LazyTrainer

        return LazyTrainer(self.cfg)

    def build_test_loader(self, dataset_name):
        test = self.cfg.dataloader.test
        dataset = copy.deepcopy(test.dataset)
        dataset.names = dataset_name
        return build_detection_test_loader(
            dataset=instantiate(dataset),
            mapper=instantiate(test.mapper),
            num_workers=test.get("num_workers", 0),
        )

    def evaluate(self, model):
        """COCO evaluation of ``model`` on ``dataloader.test``."""
        from .lazy_trainer import evaluate

        return evaluate(self.cfg, model)

    def digest(self):
        """A short hash of the config without its output folder (a moved run stays valid)."""
        cfg = copy.deepcopy(self.cfg)
        cfg.train.output_dir = ""
        return hashlib.sha256(LazyRunConfig(cfg, self.config_file).text().encode()).hexdigest()[:16]

    def test_augmentation(self):
        augmentations = instantiate(self.cfg.dataloader.test.mapper.augmentations)
        return T.AugmentationList(augmentations)

    @property
    def input_format(self):
        return self.cfg.dataloader.test.mapper.get("image_format", "BGR")


def class_names(config):
    """The class names a model of ``config`` predicts: those recorded by the run that wrote its
    weights, else those of its training (or test) datasets' metadata."""
    names = run_classes(config.weights)
    if names is None:
        for dataset in (*config.train_datasets, *config.test_datasets):
            names = MetadataCatalog.get(dataset).get("thing_classes", None)
            if names is not None:
                break
    return names


def _paths(node, path):
    """Every dotted path below a config node (dicts and lists)."""
    if hasattr(node, "items"):
        for key, value in node.items():
            yield f"{path}.{key}"
            yield from _paths(value, f"{path}.{key}")
    elif isinstance(node, (list, tuple)) or type(node).__name__ == "ListConfig":
        for index, value in enumerate(node):
            yield from _paths(value, f"{path}.{index}")


def _names(value):
    return (value,) if isinstance(value, str) else tuple(value)


def _get(cfg, path):
    node = cfg
    for part in path.split("."):
        node = node[int(part)] if part.isdigit() else node[part]
    return node
