"""Make ``import detectron2`` work in the running interpreter without replacing an existing one.

Run with the interpreter of the target environment::

    python scripts/install_detectron2.py                      # Detectron2 0.6 from the registry
    python scripts/install_detectron2.py --source SNAPSHOT    # a tarball or folder of its sources

- If Detectron2 >= 0.6 already imports (for example a user's official CUDA build), nothing changes
  (unless ``--force``).
- Otherwise Detectron2's Python sources are given a pure-Python ``setup.py`` under the distribution
  name ``detectron2`` and a ``detectron2/_C.py`` stand-in that raises a clear error when a compiled
  operator is called, and installed with the pins 0.6 needs on modern Python
  (``scripts/constraints-pure-detectron2.txt``). The sources are the registry's source distribution
  ``pb1-detectron2==0.6`` (the official v0.6 Python sources without ``layers/csrc``), or, with
  ``--source``, a snapshot such as the one of Detectron2's git main that the tests run against
  (``scripts/test_detectron2_main.sh``): a ``.tar.gz`` holding one folder with ``detectron2/`` in
  it, or such a folder.
"""

import argparse
import hashlib
import importlib
import os
import shutil
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
    description="Detectron2 Python sources, installed without compiled ops by focal_eiou_d2",
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


def unpack_snapshot(snapshot, workdir):
    """The folder holding ``detectron2/`` in a ``.tar.gz`` or folder of Detectron2 sources."""
    snapshot = Path(snapshot)
    if snapshot.is_file():
        with tarfile.open(snapshot) as tar:
            tar.extractall(workdir, filter="data")
        snapshot = Path(workdir)
    candidates = [snapshot, *sorted(p for p in snapshot.glob("*") if p.is_dir())]
    for folder in candidates:
        if (folder / "detectron2" / "__init__.py").is_file():
            copy = Path(workdir) / "pure-source"
            shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("*.egg-info", "build"))
            return copy
    raise SystemExit(
        f"{snapshot} holds no detectron2/__init__.py (nor does a folder directly in it)"
    )


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
    parser.add_argument(
        "--source",
        metavar="SNAPSHOT",
        help="a .tar.gz or folder of Detectron2 sources to install instead of the registry's 0.6",
    )
    args = parser.parse_args()
    if args.source and not os.path.exists(args.source):
        raise SystemExit(f"--source {args.source}: no such file or folder")
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
        source = unpack_snapshot(args.source, workdir) if args.source else download_sources(workdir)
        make_pure_python(source)
        pip("install", "--no-build-isolation", "-c", str(CONSTRAINTS), str(source))
    origin = args.source or SDIST
    print(f"installed detectron2 from {origin} (pure Python, compiled ops raise a clear error)")


if __name__ == "__main__":
    main()
