"""Focal-EIoU box-regression losses for Detectron2.

``focal_eiou_d2.layers`` holds the pure-PyTorch losses and imports with torch alone. The
Detectron2 parts import Detectron2 only when used: ``from focal_eiou_d2 import
add_focal_eiou_config`` loads the config keys and registers the components of
``focal_eiou_d2.modeling`` (FocalEIoURetinaNet, FocalEIoURPN, FocalEIoUStandardROIHeads,
FocalEIoUCascadeROIHeads).

Commands call :func:`ignore_torch_jit_deprecation` before their first Detectron2 import.
"""

import importlib
import warnings

__version__ = "0.1.0"


def ignore_torch_jit_deprecation():
    """Hide the FutureWarning "`torch.jit.script` is deprecated" that recent PyTorch raises when
    Detectron2 0.6 scripts a few functions at import time.

    Only that message, raised by ``torch.jit._script``, is filtered; call it before the first
    Detectron2 import of a command (it lasts for the process).
    """
    warnings.filterwarnings(
        "ignore",
        message=r"`torch\.jit\.script` is deprecated",
        category=FutureWarning,
        module=r"torch\.jit\._script",
    )


def __getattr__(name):
    if name == "add_focal_eiou_config":
        importlib.import_module("focal_eiou_d2.modeling")  # registers the Detectron2 components
        return importlib.import_module("focal_eiou_d2.config").add_focal_eiou_config
    raise AttributeError(f"module 'focal_eiou_d2' has no attribute {name!r}")
