"""The committed protocol tables (reproduction/tables/*.md) are what their own command makes of
the committed result files: none is stale or edited by hand."""

import shlex
import shutil
import subprocess

import pytest
from tiny_models import REPO

from focal_eiou_d2.tools import ablate

TABLES = sorted((REPO / "reproduction" / "tables").glob("*.md"))
PREFIX = "Command: `python -m focal_eiou_d2.tools.ablate "


def test_every_table_names_its_command():
    assert TABLES
    for table in TABLES:
        assert table.read_text().startswith(PREFIX), table.name


@pytest.mark.slow
@pytest.mark.parametrize("table", TABLES, ids=[table.stem for table in TABLES])
def test_committed_table_is_rebuilt_from_the_result_files(table, tmp_path, monkeypatch, capsys):
    command, *rest = table.read_text().splitlines()
    argv = shlex.split(command.removeprefix(PREFIX).removesuffix("`"))
    results = argv[argv.index("--results-dir") + 1]
    committed = subprocess.run(
        ["git", "ls-files", results], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    for path in committed:  # not the files of runs that finish while the test runs
        shutil.copy(REPO / path, tmp_path)
    argv[argv.index("--results-dir") + 1] = str(tmp_path)
    monkeypatch.chdir(REPO)
    ablate.main([*argv, "--output-dir", str(tmp_path / "table"), "--finished-only"])
    capsys.readouterr()
    assert (tmp_path / "table" / "table.md").read_text().splitlines() == rest[1:]


def test_the_protocol_digest_the_committed_results_record_holds():
    # The zoo's keys (DIGEST_NEUTRAL_KEYS), added since these runs, leave the digest at their
    # defaults; a new key missing from that list changes it and fails here, not only in the slow
    # rebuild of the tables.
    import json

    from focal_eiou_d2.tools.run_store import protocol_digest

    results = REPO / "reproduction" / "results" / "retinanet_shapes1_avx512"
    recorded = {
        json.loads(path.read_text())["fingerprint"]["protocol"].split("+")[0]
        for path in results.glob("*.json")
    }
    config = "configs/reproduction/retinanet_R_18_FPN_shapes1.yaml"
    assert recorded == {protocol_digest(str(REPO / config), [])}
