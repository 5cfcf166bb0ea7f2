"""The committed protocol tables (reproduction/tables/*.md) are what their own command makes of
the committed result files: none is stale or edited by hand."""

import json
import shlex
from pathlib import Path

import pytest
import torch
from tiny_models import REPO

from focal_eiou_d2.engine.fingerprint import code_digest, device_name
from focal_eiou_d2.tools import ablate

TABLES = sorted((REPO / "reproduction" / "tables").glob("*.md"))


def table_lines(text):
    return [line for line in text.splitlines() if line.startswith("|")]


def machine_differs(results_dir):
    """Why this machine cannot rebuild the result files' tables (None when it can): they are
    tabulated only under the fingerprint they were trained with."""
    record = json.loads(next(Path(results_dir).glob("*.json")).read_text())
    recorded = record["fingerprint"]
    here = {"code": code_digest(), "torch": torch.__version__, "device": device_name("cpu")}
    differs = {key: (recorded[key], value) for key, value in here.items() if recorded[key] != value}
    return f"the result files were trained elsewhere: {differs}" if differs else None


def test_every_table_names_its_command():
    assert TABLES
    for table in TABLES:
        first = table.read_text().splitlines()[0]
        assert first.startswith("Command: `python -m focal_eiou_d2.tools.ablate "), table.name


@pytest.mark.slow
@pytest.mark.parametrize("table", TABLES, ids=[table.stem for table in TABLES])
def test_committed_table_is_rebuilt_from_the_result_files(table, tmp_path, monkeypatch, capsys):
    text = table.read_text()
    argv = shlex.split(text.splitlines()[0].removeprefix("Command: `").removesuffix("`"))[3:]
    argv[argv.index("--output-dir") + 1] = str(tmp_path)
    reason = machine_differs(REPO / argv[argv.index("--results-dir") + 1])
    if reason:
        pytest.skip(reason)
    monkeypatch.chdir(REPO)
    ablate.main([*argv, "--finished-only"])
    capsys.readouterr()
    assert table_lines((tmp_path / "table.md").read_text()) == table_lines(text)
