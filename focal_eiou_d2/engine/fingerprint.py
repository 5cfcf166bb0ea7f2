"""What a training result depends on, so that results of different code, protocols or devices are
never averaged together."""

import ast
import hashlib
import os
import platform
import subprocess
from pathlib import Path

import torch

PACKAGE = Path(__file__).resolve().parents[1]
# The parts of the package a trained model and its evaluation depend on (not the tools, the
# pictures or the simulation), and within them this file, which records but computes nothing.
TRAINING_CODE = ("config.py", "layers", "modeling", "engine", "data", "evaluation")
NOT_TRAINING_CODE = ("engine/fingerprint.py",)
# Settings that choose other CPU kernels than the processor's best (ATEN_CPU_CAPABILITY shows in
# torch's capability itself).
KERNEL_SETTINGS = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS")


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
        if str(path.relative_to(PACKAGE)) in NOT_TRAINING_CODE:
            continue
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

    On the CPU, the processor, the instruction set of torch's kernels (and any setting in
    ``KERNEL_SETTINGS``) are part of it, and so is the thread count: kernels for another
    processor or split over another number of threads round differently, and a training run
    amplifies that (the same protocol run, same code and torch, on two x86-64 machines: AP 23.11
    and 23.04).
    """
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(0)})"
    parts = [platform.machine(), cpu_model(), torch.backends.cpu.get_cpu_capability()]
    parts += [f"{key}={os.environ[key]}" for key in KERNEL_SETTINGS if os.environ.get(key)]
    return f"cpu ({', '.join(parts)}, {torch.get_num_threads()} threads)"


def cpu_model(cpuinfo="/proc/cpuinfo"):
    """The processor, from the first processor's entry in ``cpuinfo``: its model name, family and
    model number on x86 (e.g. "AMD EPYC family 25 model 17"), its implementer and part on Arm
    (e.g. "CPU implementer 0x41 part 0xd0c"); ``platform.processor()`` without such a file."""
    fields = {}
    try:
        with open(cpuinfo) as f:
            for line in f:
                if not line.strip() and fields:
                    break  # the end of the first processor's entry
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    if "model name" in fields:
        name = fields["model name"]
        if "cpu family" in fields and "model" in fields:
            name += f" family {fields['cpu family']} model {fields['model']}"
        return name
    if "CPU implementer" in fields:
        return f"CPU implementer {fields['CPU implementer']} part {fields.get('CPU part', '?')}"
    return platform.processor() or "unknown processor"


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
