"""Print the environment focal_eiou_d2 runs in: ``python -m focal_eiou_d2.collect_env``."""

import importlib
import platform

import torch

import focal_eiou_d2
from focal_eiou_d2.compiled_ops import is_pure_python_stub


def detectron2_info():
    """Detectron2's version and location, and whether its compiled ops are present.

    Returns:
        list[tuple[str, str]]: rows of (name, value).
    """
    try:
        detectron2 = importlib.import_module("detectron2")
    except ImportError as error:
        return [("detectron2", f"not importable ({error}); run scripts/setup_env.sh")]
    rows = [("detectron2", f"{detectron2.__version__} @ {detectron2.__path__[0]}")]
    try:
        compiled = importlib.import_module("detectron2._C")
    except ImportError as error:
        rows.append(("detectron2 compiled ops", f"missing ({error})"))
        return rows
    if is_pure_python_stub(compiled):
        status = "no (pure-Python install; rotated boxes, deform conv and fast COCOeval raise)"
    else:
        status = "yes"
    rows.append(("detectron2 compiled ops", status))
    return rows


def collect_env():
    """Rows of (name, value) describing Python, torch, CUDA and Detectron2."""
    import numpy
    import torchvision

    rows = [
        ("Python", platform.python_version()),
        ("focal_eiou_d2", focal_eiou_d2.__version__),
        ("torch", f"{torch.__version__} (built with CUDA {torch.version.cuda})"),
        ("torchvision", torchvision.__version__),
        ("numpy", numpy.__version__),
        ("CUDA available", str(torch.cuda.is_available())),
        ("CPU threads", str(torch.get_num_threads())),
    ]
    if torch.cuda.is_available():
        rows.append(("GPU", torch.cuda.get_device_name(0)))
    return rows + detectron2_info()


def main():
    rows = collect_env()
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
