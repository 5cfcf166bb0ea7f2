"""Command line that checks COCO-format datasets without training: the check every tool runs first.

Example::

    python -m focal_eiou_d2.data.check \\
        --coco-dataset mydata_train data/train.json data/train_images \\
        --coco-dataset mydata_val data/val.json data/val_images

Prints one summary line per dataset and its warnings; exits with status 1 if any dataset has an
error (all datasets are checked), or if one name is given to datasets of other files (every tool
refuses that), 0 otherwise.
"""

import argparse
import os
import sys

from .coco import add_coco_dataset_argument, is_registered
from .validate import DatasetError, check_coco_dataset


def parse_args(argv=None):
    """Parses the command line (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m focal_eiou_d2.data.check",
        description="Check COCO-format datasets as the tools do before training.",
    )
    add_coco_dataset_argument(parser)
    args = parser.parse_args(argv)
    if not args.coco_datasets:
        parser.error("give at least one --coco-dataset NAME ANNOTATIONS_JSON IMAGE_DIR")
    return args


def check(dataset):
    """Checks one dataset, including its name; prints the result. Returns whether it is usable."""
    try:
        is_registered(dataset)  # raises if the name is taken by another dataset
        summary = check_coco_dataset(dataset.json_file, dataset.image_root)
    except DatasetError as e:
        print(f"{dataset.name}: error: {e}", file=sys.stderr)
        return False
    print(f"{dataset.name}: {summary.describe()}")
    for warning in summary.warnings:
        print(f"{dataset.name}: warning: {warning}")
    return True


def check_names(datasets):
    """Prints an error for each name given to datasets of other files, as every tool refuses the
    second of them. Returns whether there is none."""
    files = {}
    for dataset in datasets:
        pair = os.path.realpath(dataset.json_file), os.path.realpath(dataset.image_root)
        files.setdefault(dataset.name, {}).setdefault(pair, dataset)
    clashes = {name: list(given.values()) for name, given in files.items() if len(given) > 1}
    for name, given in clashes.items():
        options = "; ".join(dataset.option() for dataset in given)
        print(
            f"{name}: error: the name is given to {len(given)} datasets of other files "
            f"({options}); every tool refuses this: give each dataset its own NAME",
            file=sys.stderr,
        )
    return not clashes


def main(argv=None):
    """Checks every dataset of the command line and their names; returns the exit status."""
    args = parse_args(argv)
    names_ok = check_names(args.coco_datasets)
    results = [check(dataset) for dataset in args.coco_datasets]
    return 0 if names_ok and all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
