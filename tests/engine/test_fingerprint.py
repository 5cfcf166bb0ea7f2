"""A result's fingerprint tells apart what gives other numbers: on the CPU, the processor, the
instruction set of torch's kernels and the thread count."""

import torch

from focal_eiou_d2.engine import fingerprint as fingerprint_module
from focal_eiou_d2.engine.fingerprint import cpu_model, device_name, fingerprint


def test_cpu_device_names_processor_instruction_set_and_threads():
    name = device_name("cpu")
    assert cpu_model() in name and f"{torch.get_num_threads()} threads" in name
    assert f", {torch.backends.cpu.get_cpu_capability()}, " in name


def test_machines_with_other_kernels_have_other_fingerprints(monkeypatch):
    names = set()
    for capability in ("AVX2", "AVX512"):
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda c=capability: c)
        names.add(fingerprint("protocol", "cpu")["device"])
    assert len(names) == 2
    monkeypatch.setattr(fingerprint_module, "cpu_model", lambda: "Another CPU family 1 model 2")
    assert fingerprint("protocol", "cpu")["device"] not in names
