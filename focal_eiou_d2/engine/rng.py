"""One process's random-generator states as checkpointable data (tensors, ints and lists only),
and the opt-in deterministic mode for CUDA."""

import logging
import os
import random

import numpy as np
import torch

logger = logging.getLogger(__name__)

# Set to 1 to train with deterministic algorithms (slower on CUDA; see docs/reliability.md).
DETERMINISTIC_ENV = "FOCAL_EIOU_DETERMINISTIC"


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


def use_deterministic_mode():
    """Switch this process to deterministic algorithms if ``FOCAL_EIOU_DETERMINISTIC=1``.

    Sets ``torch.use_deterministic_algorithms(True, warn_only=True)``, cuDNN's deterministic
    convolutions without autotuning, and ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` (unless set), which
    cuBLAS reads when it starts: call this before the first CUDA computation. Operations that
    have no deterministic CUDA implementation still run, with a warning naming them.

    Returns:
        bool: whether the mode is on.
    """
    value = os.environ.get(DETERMINISTIC_ENV, "0")
    if value not in ("0", "1"):
        raise ValueError(f"{DETERMINISTIC_ENV} must be 0 or 1, not {value!r}")
    if value == "0":
        return False
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)
    logger.info("%s=1: deterministic algorithms (slower on CUDA)", DETERMINISTIC_ENV)
    return True
