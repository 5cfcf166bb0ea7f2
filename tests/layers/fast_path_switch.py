"""The fast path switch for a block of a test (a plain module: tests/conftest.py is imported by
name)."""

import contextlib

from focal_eiou_d2.layers import set_fast_path


@contextlib.contextmanager
def fast_path_enabled(enabled: bool):
    """Run the block with the fast path on (True) or off (False), then restore the switch."""
    previous = set_fast_path(enabled)
    try:
        yield
    finally:
        set_fast_path(previous)
