from pathlib import Path

from setuptools import find_packages, setup


def read_version():
    init = Path(__file__).parent / "focal_eiou_d2" / "__init__.py"
    line = next(x for x in init.read_text().splitlines() if x.startswith("__version__"))
    return line.split("=")[1].strip().strip("\"'")


setup(
    name="focal_eiou_d2",
    version=read_version(),
    description="Focal-EIoU box-regression loss (Zhang et al., Neurocomputing 2022) for Detectron2",
    long_description=(Path(__file__).parent / "README.md").read_text(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",  # zip(strict=True)
    packages=find_packages(include=["focal_eiou_d2", "focal_eiou_d2.*"]),
    install_requires=[
        # torch and torchvision are not upgraded when already present; see scripts/setup_env.sh.
        # 2.5: the oldest release the README supports.
        "torch>=2.5",
        "torchvision>=0.20",
        # Detectron2 (>= 0.6, or its git main) is not on PyPI under its own name, so it is not
        # declared here: install it first (docs/installation.md; scripts/install_detectron2.py).
        "fvcore",
        "pycocotools>=2.0.2",
        "opencv-python-headless",
        "matplotlib",
        "numpy",
        "Pillow",
        "tqdm",
    ],
    extras_require={
        "dev": ["pytest>=7", "hypothesis>=6", "black>=24", "ruff>=0.4"],
    },
)
