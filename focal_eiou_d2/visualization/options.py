"""The output folder of the picture and report tools (``demo/demo.py``,
``focal_eiou_d2.tools.compare``), checked before any model is built so that a bad value fails at
once instead of after the inference. Their options are ``focal_eiou_d2.tools.cli``'s."""

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
