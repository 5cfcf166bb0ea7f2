"""Make ``import detectron2`` work in the running interpreter without replacing an existing one.

Run with the interpreter of the target environment::

    python scripts/install_detectron2.py

- If Detectron2 >= 0.6 already imports (for example a user's official CUDA build), nothing changes.
- Otherwise the registry's source distribution ``pb1-detectron2==0.6`` (the official v0.6 Python
  sources without ``layers/csrc``) is downloaded, given a pure-Python ``setup.py`` under the
  distribution name ``detectron2`` and a ``detectron2/_C.py`` stand-in that raises a clear error
  when a compiled operator is called, and installed with the pins 0.6 needs on modern Python
  (``scripts/constraints-pure-detectron2.txt``).
"""

import argparse
import hashlib
import importlib
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

SDIST = "pb1-detectron2==0.6"
SDIST_SHA256 = "5d2e9e51e523ec72f6a31cca04b0a515492e9514b773a3d134cedc0677170b29"
SCRIPTS = Path(__file__).resolve().parent
CONSTRAINTS = SCRIPTS / "constraints-pure-detectron2.txt"

# Detectron2 0.6's own runtime requirements, minus the formatter and caffe2 helpers it pins
# (black==21.4b2, future, pydot) that no training or evaluation path imports.
REQUIREMENTS = [
    "Pillow>=7.1",
    "matplotlib",
    "pycocotools>=2.0.2",
    "termcolor>=1.1",
    "yacs>=0.1.8",
    "tabulate",
    "cloudpickle",
    "tqdm>4.29.0",
    "tensorboard",
    "fvcore>=0.1.5,<0.1.6",
    "iopath>=0.1.7,<0.1.10",
    "omegaconf>=2.1",
    "hydra-core>=1.1",
]

SETUP_PY = """\
from setuptools import find_packages, setup

setup(
    name="detectron2",
    version="0.6",
    description="Detectron2 0.6 Python sources, installed without compiled ops by focal_eiou_d2",
    url="https://github.com/facebookresearch/detectron2",
    license="Apache-2.0",
    packages=find_packages(include=["detectron2", "detectron2.*"]),
    package_data={{"detectron2.model_zoo": ["configs/**/*.yaml", "configs/**/*.py"]}},
    python_requires=">=3.7",
    install_requires={requirements!r},
)
"""


def installed_version():
    """Version string of an importable Detectron2, or None when it does not import."""
    try:
        module = importlib.import_module("detectron2")
    except ImportError:
        return None
    return getattr(module, "__version__", "0")


def version_tuple(version):
    digits = []
    for part in version.split("+")[0].split("."):
        if not part.isdigit():
            break
        digits.append(int(part))
    return tuple(digits)


def pip(*args):
    subprocess.run([sys.executable, "-m", "pip", *args], check=True)


def download_sources(workdir):
    pip(
        "download",
        "--no-deps",
        "--no-binary",
        ":all:",
        "--no-build-isolation",
        SDIST,
        "-d",
        workdir,
    )
    archive = next(Path(workdir).glob("pb1[-_]detectron2-0.6.tar.gz"))
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    if digest != SDIST_SHA256:
        raise SystemExit(
            f"{archive.name} has sha256 {digest}, expected {SDIST_SHA256}: the registry served a "
            "different file. Refusing to install it."
        )
    with tarfile.open(archive) as tar:
        tar.extractall(workdir, filter="data")
    return Path(workdir) / "pb1-detectron2-0.6"


def make_pure_python(source):
    """Replace the compiling setup.py and add the ``detectron2._C`` stand-in."""
    (source / "setup.py").write_text(SETUP_PY.format(requirements=REQUIREMENTS))
    (source / "pyproject.toml").unlink(missing_ok=True)
    for stale in source.glob("*.egg-info"):
        for path in sorted(stale.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        stale.rmdir()
    (source / "detectron2" / "_C.py").write_text((SCRIPTS / "detectron2_pure_C.py").read_text())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--force", action="store_true", help="reinstall the pure-Python build even if one imports"
    )
    args = parser.parse_args()
    version = installed_version()
    if version is not None and not args.force:
        if version_tuple(version) < (0, 6):
            raise SystemExit(
                f"detectron2 {version} is installed but focal_eiou_d2 needs >= 0.6. Upgrade it, or "
                "`pip uninstall detectron2` and rerun this script to get the pure-Python 0.6."
            )
        print(f"detectron2 {version} already imports: keeping it.")
        return
    with tempfile.TemporaryDirectory(prefix="detectron2-src-") as workdir:
        source = download_sources(workdir)
        make_pure_python(source)
        pip("install", "--no-build-isolation", "-c", str(CONSTRAINTS), str(source))
    print("installed detectron2 0.6 (pure Python, compiled ops raise a clear error when used)")


if __name__ == "__main__":
    main()
