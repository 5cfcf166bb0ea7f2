"""Command-line options shared by the picture and report tools (``demo/demo.py``,
``focal_eiou_d2.tools.compare``), checked before any model is built so that a bad value fails at
once instead of after the inference."""

import os


def ensure_writable_folder(folder, option):
    """Creates ``folder`` (and its parents) if needed and checks that files can be written in it.

    Args:
        folder (str): the folder.
        option (str): how the user gave it, for the message, e.g. "--output vis/".

    Raises:
        ValueError: ``folder`` or one of its parents is a file, cannot be created, or is not
            writable; the message names ``option`` and the reason.
    """
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise ValueError(f"{option}: {folder} is a file, not a folder; give a folder")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        raise ValueError(
            f"{option}: cannot create the folder {folder} ({error.strerror}); give a folder you "
            "can write to"
        ) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(
            f"{option}: the folder {folder} is not writable; give a folder you can write to"
        )


def add_opts_argument(parser, example):
    """Adds ``--opts``: config overrides of every model the tool builds, as in Detectron2's demo.

    Args:
        parser (argparse.ArgumentParser): the tool's parser.
        example (str): an example of YAML overrides for the help text.
    """
    parser.add_argument(
        "--opts",
        nargs="*",
        default=[],
        metavar="KEY VALUE",
        help=f"config overrides of every model (A and B), as in Detectron2's demo: KEY VALUE "
        f"pairs for YAML configs, e.g. {example}; key=value for LazyConfig (.py) files",
    )


def check_opts(parser, opts, config_files):
    """Exits through ``parser`` if ``opts`` are not KEY VALUE pairs while no config of
    ``config_files`` is a LazyConfig (whose key=value overrides are checked when it is loaded)."""
    lazy = any(path and path.endswith(".py") for path in config_files)
    if not lazy and len(opts) % 2:
        parser.error(f"--opts takes KEY VALUE pairs, got an odd number: {' '.join(opts)}")
