"""Command line that generates the synthetic shapes dataset.

Example::

    python -m focal_eiou_d2.data.generate --splits val --seed 0

Without ``--root`` the dataset goes under ``default_root()`` (see ``root.py``), wherever the
command runs from.
"""

import argparse
import os

from .root import default_root
from .writer import DEFAULT_SPEC, SPLITS, ShapesSpec, generate_shapes


def parse_args(argv=None):
    """Parses the command line (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m focal_eiou_d2.data.generate",
        description="Generate the focal_eiou_d2 synthetic shapes dataset (COCO json + PNG).",
    )
    parser.add_argument(
        "--root", default=None, help=f"parent directory (default: {default_root()})"
    )
    parser.add_argument("--name", default=None, help="dataset directory name (default: from spec)")
    parser.add_argument("--splits", nargs="+", choices=SPLITS, default=SPLITS, help="default: both")
    parser.add_argument("--train-images", type=int, default=DEFAULT_SPEC.train_images)
    parser.add_argument("--val-images", type=int, default=DEFAULT_SPEC.val_images)
    parser.add_argument("--image-size", type=int, default=DEFAULT_SPEC.image_size)
    parser.add_argument("--seed", type=int, default=DEFAULT_SPEC.seed)
    return parser.parse_args(argv)


def main(argv=None):
    """Generates the splits described by the command line and prints the dataset directory."""
    args = parse_args(argv)
    spec = ShapesSpec(args.train_images, args.val_images, args.image_size, args.seed)
    directory = os.path.join(args.root or default_root(), args.name or spec.dirname())
    print(generate_shapes(directory, spec, tuple(args.splits)))


if __name__ == "__main__":
    main()
