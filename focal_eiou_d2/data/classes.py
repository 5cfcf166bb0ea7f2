"""The classes of registered datasets, and the rule that sets a head's class count from them.

``dataset_classes(cfg.DATASETS.TRAIN)`` gives the class names a model trains on; the head's class
count (``MODEL.RETINANET.NUM_CLASSES``, ``MODEL.ROI_HEADS.NUM_CLASSES``) then follows
``num_classes_for``: a value from a config file is replaced by the dataset's count, a value given
on the command line is kept unless it is smaller than that count, which is an error.
"""

import logging

from detectron2.data import DatasetCatalog, MetadataCatalog

from .validate import DatasetError

logger = logging.getLogger(__name__)


def registered_classes(name):
    """Returns the ``thing_classes`` of the registered dataset ``name``.

    Metadata set at registration is used without reading any file (Detectron2's builtin datasets
    such as ``coco_2017_train``, the shapes datasets, ``--coco-dataset`` datasets). A dataset
    registered without ``thing_classes`` is loaded once, which sets them if it is in COCO format.

    Raises:
        DatasetError: ``name`` is not registered, or has no ``thing_classes`` after loading.
    """
    if name not in DatasetCatalog.list():
        raise DatasetError(
            f"dataset {name!r} is not registered: register it with --coco-dataset {name} "
            "ANNOTATIONS_JSON IMAGE_DIR, or use a registered name"
        )
    metadata = MetadataCatalog.get(name)
    if metadata.get("thing_classes", None) is None:
        DatasetCatalog.get(name)
    classes = metadata.get("thing_classes", None)
    if classes is None:
        raise DatasetError(
            f"dataset {name!r} has no thing_classes in its metadata, even after loading it: set "
            f"MetadataCatalog.get({name!r}).thing_classes when registering it"
        )
    return tuple(classes)


def dataset_classes(names):
    """Returns the class names shared by the registered datasets ``names``.

    Args:
        names (str or Iterable[str]): dataset names, e.g. ``cfg.DATASETS.TRAIN``.

    Returns:
        tuple[str]: class names in contiguous-id order; their number is the class count.

    Raises:
        DatasetError: no name given, a dataset is unknown or has no classes, or two datasets
            have different classes (they cannot train one head).
    """
    names = (names,) if isinstance(names, str) else tuple(names)
    if not names:
        raise DatasetError("no dataset given: name at least one, e.g. DATASETS.TRAIN ('NAME',)")
    first = registered_classes(names[0])
    for name in names[1:]:
        classes = registered_classes(name)
        if classes != first:
            raise DatasetError(
                f"datasets {names[0]!r} ({len(first)} classes: {', '.join(first)}) and {name!r} "
                f"({len(classes)} classes: {', '.join(classes)}) have different classes; "
                "datasets trained together need the same categories"
            )
    return first


def num_classes_for(num_dataset_classes, key, value, from_command_line):
    """Returns the class count a head uses, given the count of its training datasets.

    A ``value`` from a config file is replaced by ``num_dataset_classes`` (with one log line if
    they differ). A ``value`` given on the command line is kept: larger leaves some classes
    unused, smaller would leave categories without an output, which is an error.

    Args:
        num_dataset_classes (int): number of classes of the training datasets.
        key (str): the config key, e.g. ``"MODEL.RETINANET.NUM_CLASSES"``.
        value (int): its current value.
        from_command_line (bool): whether the user set ``key`` on the command line.

    Returns:
        int: the value to use.

    Raises:
        DatasetError: ``value`` came from the command line and is smaller than the count.
    """
    if not from_command_line:
        if value != num_dataset_classes:
            logger.info(
                f"{key}: {num_dataset_classes} (the training dataset's categories) replaces "
                f"{value} from the config file"
            )
        return num_dataset_classes
    if value < num_dataset_classes:
        raise DatasetError(
            f"{key} {value} given on the command line is smaller than the {num_dataset_classes} "
            f"categories of the training dataset: set {key} {num_dataset_classes} (or more), or "
            "leave it out to follow the dataset"
        )
    return value
