"""What a training result depends on, so that results of different code, protocols or devices are
never averaged together."""

import ast
import hashlib
import platform
import subprocess
from pathlib import Path

import torch

PACKAGE = Path(__file__).resolve().parents[1]
# The parts of the package a trained model and its evaluation depend on (not the tools, the
# pictures or the simulation).
TRAINING_CODE = ("config.py", "layers", "modeling", "engine", "data", "evaluation")


def code_digest():
    """A hash of the training code: its Python modules without docstrings and comments (so that
    prose edits keep it), and the C++ kernels' sources.

    Returns:
        str: 16 hexadecimal digits.
    """
    digest = hashlib.sha256()
    files = []
    for entry in TRAINING_CODE:
        path = PACKAGE / entry
        files += sorted(path.rglob("*")) if path.is_dir() else [path]
    for path in files:
        if path.suffix == ".py":
            text = ast.dump(_without_docstrings(ast.parse(path.read_text())))
        elif path.suffix in (".cpp", ".h"):
            text = path.read_text()
        else:
            continue
        digest.update(f"{path.relative_to(PACKAGE)}\n{text}\n".encode())
    return digest.hexdigest()[:16]


def git_commit():
    """The checkout's commit (with "+changes" if it has uncommitted changes), or None."""
    try:
        commit = _git("rev-parse", "--short=12", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("+changes" if dirty else "")


def _git(*args):
    """The output of a git command run in the package's folder, stripped."""
    result = subprocess.run(["git", *args], cwd=PACKAGE, capture_output=True, text=True, check=True)
    return result.stdout.strip()


def device_name(device):
    """The hardware a config's device runs on, e.g. "cpu (x86_64, AMD EPYC family 25 model 17,
    AVX512, 2 threads)" or the GPU's name.

    On the CPU, the processor and the instruction set of torch's kernels are part of it, and so
    is the thread count: kernels for another processor or split over another number of threads
    round differently, and a training run amplifies that (the same protocol run, same code and
    torch, on two x86-64 machines: AP 23.11 and 23.04).
    """
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(0)})"
    capability = torch.backends.cpu.get_cpu_capability()
    threads = torch.get_num_threads()
    return f"cpu ({platform.machine()}, {cpu_model()}, {capability}, {threads} threads)"


def cpu_model():
    """The processor's model name, family and model number from /proc/cpuinfo, e.g. "AMD EPYC
    family 25 model 17" (``platform.processor()`` where there is no /proc/cpuinfo)."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        return platform.processor() or "unknown processor"
    name = fields.get("model name") or platform.processor() or "unknown processor"
    if "cpu family" in fields and "model" in fields:
        name += f" family {fields['cpu family']} model {fields['model']}"
    return name


def fingerprint(protocol_digest, device):
    """The fingerprint of a result: results are comparable only when it is the same.

    Args:
        protocol_digest (str): hash of everything in the config but the varied settings.
        device (str): the config's MODEL.DEVICE.

    Returns:
        dict: ``code`` (:func:`code_digest`), ``protocol``, ``torch`` and ``device``.
    """
    return {
        "code": code_digest(),
        "protocol": protocol_digest,
        "torch": torch.__version__,
        "device": device_name(device),
    }


def _without_docstrings(tree):
    """``tree`` with the docstring of every module, class and function removed."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                if isinstance(body[0].value.value, str):
                    node.body = body[1:] or [ast.Pass()]
    return tree
