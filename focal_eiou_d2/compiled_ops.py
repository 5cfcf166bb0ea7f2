"""Whether Detectron2's compiled extension ``detectron2._C`` is present (imports no Detectron2
module unless asked)."""

import importlib


def is_pure_python_stub(module):
    """Whether ``module`` is the ``detectron2._C`` stand-in of scripts/install_detectron2.py."""
    return getattr(module, "FOCAL_EIOU_D2_PURE_PYTHON", False) is True


def detectron2_has_compiled_ops():
    """Whether Detectron2's compiled extension (and so its fast C++ COCOeval) is available."""
    try:
        compiled = importlib.import_module("detectron2._C")
    except ImportError:
        return False
    return not is_pure_python_stub(compiled)
