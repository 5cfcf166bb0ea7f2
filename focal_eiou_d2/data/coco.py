"""COCO-format datasets on the command line: ``--coco-dataset NAME ANNOTATIONS_JSON IMAGE_DIR``.

Every tool takes the same repeatable option. ``add_coco_dataset_argument`` adds it to a parser;
``register_coco_datasets`` checks each dataset (``validate.check_coco_dataset``) and registers it
with Detectron2 as COCO instances, so that a config can name it (``DATASETS.TRAIN ('NAME',)``)::

    parser = argparse.ArgumentParser()
    add_coco_dataset_argument(parser)
    args = parser.parse_args()
    register_coco_datasets(args.coco_datasets)  # in every process of a multi-process run

Registering the same (NAME, ANNOTATIONS_JSON, IMAGE_DIR) again is a no-op; a NAME that is already
another dataset (a builtin such as ``coco_2017_train``, or ``shapes_train``) is an error.
"""

import argparse
import json
import logging
import os
from dataclasses import dataclass

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets import register_coco_instances

from .validate import DatasetError, check_coco_dataset

# The datasets this machine's launcher has checked, inherited by the processes it starts:
# {signature: {"thing_classes": [...], "category_ids": [...]}}; see :func:`checked_metadata`.
CHECKED_VARIABLE = "FOCAL_EIOU_D2_CHECKED_DATASETS"
OPTION = "--coco-dataset"
METAVAR = ("NAME", "ANNOTATIONS_JSON", "IMAGE_DIR")
DEST = "coco_datasets"
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CocoDataset:
    """A COCO instances dataset named on the command line.

    Attributes:
        name (str): the name configs use, e.g. in ``DATASETS.TRAIN``.
        json_file (str): absolute path of the COCO instances JSON.
        image_root (str): absolute path of the folder its images' ``file_name`` are relative to.
    """

    name: str
    json_file: str
    image_root: str

    @classmethod
    def from_values(cls, name, json_file, image_root):
        """Builds one from the three command-line values; relative paths are made absolute."""
        return cls(name, absolute(json_file), absolute(image_root))

    def option(self):
        """Returns the command-line form, e.g. ``--coco-dataset NAME JSON DIR``."""
        return f"{OPTION} {self.name} {self.json_file} {self.image_root}"


def absolute(path):
    """Returns ``path`` with ``~`` expanded, absolute against the current directory."""
    return os.path.abspath(os.path.expanduser(path))


class CocoDatasetAction(argparse.Action):
    """Appends a ``CocoDataset`` per occurrence of the option (the default list is not changed)."""

    def __call__(self, parser, namespace, values, option_string=None):
        name, json_file, image_root = values
        if not name.strip():
            parser.error(f"{OPTION}: NAME must not be empty")
        datasets = list(getattr(namespace, self.dest) or [])
        datasets.append(CocoDataset.from_values(name, json_file, image_root))
        setattr(namespace, self.dest, datasets)


def add_coco_dataset_argument(parser):
    """Adds the repeatable option ``--coco-dataset NAME ANNOTATIONS_JSON IMAGE_DIR`` to ``parser``.

    The parsed value, ``args.coco_datasets``, is a list of ``CocoDataset`` (empty by default).
    Where the parser also takes ``KEY VALUE`` config overrides as trailing positionals, the option
    comes before them.

    Args:
        parser (argparse.ArgumentParser): the tool's parser.

    Returns:
        argparse.Action: the added argument.
    """
    return parser.add_argument(
        OPTION,
        nargs=3,
        metavar=METAVAR,
        action=CocoDatasetAction,
        dest=DEST,
        default=[],
        help=(
            "register a COCO-format dataset under NAME, so that configs can use it "
            "(DATASETS.TRAIN \"('NAME',)\"): ANNOTATIONS_JSON is its COCO instances file, "
            "IMAGE_DIR the folder its images' file_name paths are relative to. Checked before "
            "use; repeat the option for more datasets (e.g. train and val)"
        ),
    )


def registered_files(name):
    """Returns ``(json_file, image_root)`` in the metadata of ``name`` (None where unset)."""
    if name not in MetadataCatalog.list():
        return None, None
    metadata = MetadataCatalog.get(name)
    return metadata.get("json_file", None), metadata.get("image_root", None)


def same_path(a, b):
    """Whether paths ``a`` and ``b`` (or None) name the same file."""
    return a is not None and b is not None and os.path.realpath(a) == os.path.realpath(b)


def is_registered(dataset):
    """Whether ``dataset.name`` is registered with ``dataset``'s files.

    Raises:
        DatasetError: the name is registered as another dataset.
    """
    if dataset.name not in DatasetCatalog.list():
        return False
    json_file, image_root = registered_files(dataset.name)
    if same_path(json_file, dataset.json_file) and same_path(image_root, dataset.image_root):
        return True
    if json_file is None:
        existing = "by Detectron2 or this project, without an annotation file"
    else:
        existing = f"with annotations {json_file} and images {image_root}"
    raise DatasetError(
        f"{dataset.option()}: the name {dataset.name!r} is already a registered dataset "
        f"({existing}); choose another NAME, e.g. {dataset.name}_custom"
    )


def register_coco_dataset(dataset):
    """Checks ``dataset`` and registers it with Detectron2, unless it is registered already.

    The metadata holds ``json_file``, ``image_root``, ``evaluator_type="coco"``,
    ``thing_classes`` (category names in id order) and ``thing_dataset_id_to_contiguous_id``
    (sorted ids to 0..K-1), both as Detectron2's ``load_coco_json`` sets them, so that they are
    known before the JSON is loaded. The check's warnings are logged here, once per process.

    Args:
        dataset (CocoDataset): what to register.

    Returns:
        CocoSummary or None: the check's result; None if it was registered already, or checked
        by this machine's launcher (:func:`checked_metadata`).

    Raises:
        DatasetError: the dataset fails the check, or its name is another registered dataset.
    """
    if is_registered(dataset):
        return None
    json_file, image_root = registered_files(dataset.name)
    if json_file is not None or image_root is not None:
        raise DatasetError(
            f"{dataset.option()}: the name {dataset.name!r} already has metadata for annotations "
            f"{json_file} and images {image_root}; choose another NAME"
        )
    summary, metadata = None, checked_metadata(dataset)
    if metadata is None:
        summary = check_coco_dataset(dataset.json_file, dataset.image_root)
        for warning in summary.warnings:
            logger.warning(warning)
        metadata = {
            "thing_classes": list(summary.thing_classes),
            "thing_dataset_id_to_contiguous_id": summary.id_map(),
        }
        record_checked(dataset, summary)
        logger.info(
            f"Registered dataset {dataset.name!r}: {dataset.json_file}, {summary.describe()}"
        )
    register_coco_instances(dataset.name, metadata, dataset.json_file, dataset.image_root)
    return summary


def signature(dataset):
    """What identifies a checked dataset: its files' real paths, and the JSON's size and time."""
    stat = os.stat(dataset.json_file)
    json_file, image_root = os.path.realpath(dataset.json_file), os.path.realpath(
        dataset.image_root
    )
    return f"{json_file}|{stat.st_size}|{stat.st_mtime_ns}|{image_root}"


def checked_metadata(dataset):
    """The metadata of ``dataset`` if this machine's launcher checked it (the JSON unchanged
    since), so that the processes it starts do not parse the JSON and stat every image again;
    else None."""
    checked = json.loads(os.environ.get(CHECKED_VARIABLE, "{}"))
    entry = checked.get(signature(dataset)) if os.path.isfile(dataset.json_file) else None
    if entry is None:
        return None
    ids = entry["category_ids"]
    return {
        "thing_classes": entry["thing_classes"],
        "thing_dataset_id_to_contiguous_id": {
            category: index for index, category in enumerate(ids)
        },
    }


def record_checked(dataset, summary):
    """Note in this process's environment that ``dataset`` passed the check (for the processes
    it starts: :func:`checked_metadata`)."""
    checked = json.loads(os.environ.get(CHECKED_VARIABLE, "{}"))
    checked[signature(dataset)] = {
        "thing_classes": list(summary.thing_classes),
        "category_ids": list(summary.category_ids),
    }
    os.environ[CHECKED_VARIABLE] = json.dumps(checked)


def register_coco_datasets(datasets):
    """Checks and registers every dataset of ``datasets`` (see ``register_coco_dataset``).

    Call it in every process that builds a config or a data loader (with ``launch``, inside the
    function it runs); calls after the first register nothing and say nothing.

    Args:
        datasets (Iterable[CocoDataset]): e.g. ``args.coco_datasets``.

    Returns:
        list[str]: the names, in order.
    """
    names = []
    for dataset in datasets:
        register_coco_dataset(dataset)
        names.append(dataset.name)
    return names
