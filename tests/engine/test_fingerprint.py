"""A result's fingerprint tells apart what gives other numbers: on the CPU, the processor, the
instruction set of torch's kernels and the thread count; and the training code, but not the code
that only records."""

import shutil

import torch

from focal_eiou_d2.engine import fingerprint as fingerprint_module
from focal_eiou_d2.engine.fingerprint import code_digest, cpu_model, device_name, fingerprint

X86 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC 9454P 48-Core Processor
flags\t\t: fpu avx2 avx512f

processor\t: 1
model name\t: Another
"""
ARM = """processor\t: 0
BogoMIPS\t: 50.00
CPU implementer\t: 0x41
CPU architecture: 8
CPU part\t: 0xd0c
"""


def test_cpu_model_from_cpuinfo(tmp_path):
    (tmp_path / "x86").write_text(X86)
    (tmp_path / "arm").write_text(ARM)
    assert cpu_model(tmp_path / "x86") == "AMD EPYC 9454P 48-Core Processor family 25 model 17"
    assert cpu_model(tmp_path / "arm") == "CPU implementer 0x41 part 0xd0c"
    assert cpu_model(tmp_path / "missing")  # platform.processor() or "unknown processor"


def test_cpu_device_names_processor_instruction_set_and_threads():
    name = device_name("cpu")
    assert cpu_model() in name and f"{torch.get_num_threads()} threads" in name
    assert f", {torch.backends.cpu.get_cpu_capability()}, " in name


def test_other_kernels_give_other_fingerprints(monkeypatch):
    for key in fingerprint_module.KERNEL_SETTINGS:
        monkeypatch.delenv(key, raising=False)
    names = set()
    for capability in ("AVX2", "AVX512"):
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda c=capability: c)
        names.add(fingerprint("protocol", "cpu")["device"])
    assert len(names) == 2
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert "ONEDNN_MAX_CPU_ISA=AVX2" in fingerprint("protocol", "cpu")["device"]
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    monkeypatch.setattr(fingerprint_module, "cpu_model", lambda: "Another CPU family 1 model 2")
    assert fingerprint("protocol", "cpu")["device"] not in names


def test_code_digest_follows_training_code_only(tmp_path, monkeypatch):
    package = tmp_path / "focal_eiou_d2"
    shutil.copytree(fingerprint_module.PACKAGE, package)
    monkeypatch.setattr(fingerprint_module, "PACKAGE", package)
    before = code_digest()
    for recorder in ("engine/fingerprint.py", "tools/ablate.py"):
        with open(package / recorder, "a") as f:
            f.write("\nRECORDED_TOO = 1\n")
    with open(package / "layers" / "focal_eiou.py", "a") as f:
        f.write("\n# a comment\n")
    assert code_digest() == before
    with open(package / "layers" / "focal_eiou.py", "a") as f:
        f.write("TRAINING_SETTING = 1\n")
    assert code_digest() != before
