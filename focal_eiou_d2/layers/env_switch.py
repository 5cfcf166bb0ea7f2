"""On/off switches read from environment variables."""

import os


def env_switch(name: str) -> bool:
    """Whether the switch in the environment variable ``name`` is on.

    Args:
        name (str): the variable, e.g. ``FOCAL_EIOU_D2_FAST_PATH``.

    Returns:
        bool: False if the variable is "0", "false" or "off" (any case), True otherwise or unset.
    """
    return os.environ.get(name, "1").lower() not in ("0", "false", "off")
