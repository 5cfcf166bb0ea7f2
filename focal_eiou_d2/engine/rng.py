"""One process's random-generator states as checkpointable data (tensors, ints and lists only)."""

import random

import numpy as np
import torch


def rng_state():
    """The states of Python's, NumPy's and torch's global generators in this process.

    The CUDA state is that of the current device only: each training process owns one GPU, and a
    run may be resumed on a machine with fewer GPUs than it was saved on.

    Returns:
        dict: only tensors, ints, floats and lists, so ``torch.load(weights_only=True)`` reads it.
    """
    version, internal, gauss = random.getstate()
    kind, keys, position, has_gauss, cached = np.random.get_state()
    state = {
        "python": [version, list(internal), gauss],
        "numpy": [torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state):
    """Restore this process's generators from a ``rng_state()`` result."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state(("MT19937", keys.numpy().astype(np.uint32), position, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])
