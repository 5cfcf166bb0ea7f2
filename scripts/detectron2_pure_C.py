"""Stand-in for Detectron2's compiled extension ``detectron2._C``.

Written by focal_eiou_d2's ``scripts/install_detectron2.py`` when Detectron2 0.6 is installed from
its Python sources only. Everything implemented in Python works. A compiled operator (deformable
convolution, rotated boxes, the C++ COCOeval used by ``COCOEvaluator(use_fast_impl=True)``) raises
a RuntimeError naming the operator when it is called, not when Detectron2 is imported.
"""

FOCAL_EIOU_D2_PURE_PYTHON = True

_ADVICE = (
    "this Detectron2 was installed from Python sources without compiled ops "
    "(focal_eiou_d2 scripts/install_detectron2.py). Avoid the feature that needs it "
    "(rotated boxes, deformable convolution, COCOEvaluator(use_fast_impl=True)) or install "
    "Detectron2's official build first: see docs/installation.md."
)


def get_compiler_version():
    return "none (pure-Python install, no compiled ops)"


def get_cuda_version():
    return "none (pure-Python install, no compiled ops)"


def has_cuda():
    return False


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)

    def missing_compiled_op(*args, **kwargs):
        raise RuntimeError(f"detectron2._C.{name} is a compiled operator, but {_ADVICE}")

    missing_compiled_op.__name__ = name
    return missing_compiled_op
