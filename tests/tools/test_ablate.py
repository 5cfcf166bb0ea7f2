"""The ablation runner trains each (loss, seed), tabulates, and skips finished runs on a rerun."""

import json
import os
import subprocess
import sys

from tiny_models import REPO, SMOKE_OPTS

from focal_eiou_d2.tools.ablate import format_markdown, loss_weight, summarize

CONFIG = "configs/quickstart/retinanet_R_18_FPN_shapes.yaml"


def run_ablation(tmp_path, losses, seeds, *options):
    command = [sys.executable, "-m", "focal_eiou_d2.tools.ablate", "--config-file", CONFIG]
    command += ["--losses", *losses, "--seeds", *map(str, seeds), *options]
    command += ["--output-dir", str(tmp_path / "ablation"), *SMOKE_OPTS]
    env = {**os.environ, "DETECTRON2_DATASETS": str(tmp_path / "datasets")}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_runs_tabulates_and_resumes(tmp_path):
    first = run_ablation(tmp_path, ["focal_eiou"], [0, 1])
    assert first.count(": training") == 2
    table = json.loads((tmp_path / "ablation" / "table.json").read_text())
    row = table["losses"]["focal_eiou"]
    assert row["seeds"] == 2 and len(row["ap_per_iou"]) == 10
    assert (tmp_path / "ablation" / "ap_vs_iou.png").stat().st_size > 0
    assert "| focal_eiou | 2 |" in (tmp_path / "ablation" / "table.md").read_text()

    (tmp_path / "ablation" / "focal_eiou" / "seed1" / "quickstart_results.json").unlink()
    partial = run_ablation(tmp_path, ["focal_eiou"], [0, 1], "--finished-only")
    assert "seed1: not finished, left out" in partial and ": training" not in partial
    assert "| focal_eiou | 1 |" in (tmp_path / "ablation" / "table.md").read_text()
    second = run_ablation(tmp_path, ["focal_eiou"], [0, 1])
    assert "seed0: finished earlier, skipped" in second
    assert second.count(": training") == 1


def test_summary_is_mean_and_sample_std():
    runs = [
        {"bbox": dict.fromkeys(("AP", "AP50", "AP75", "APs", "APm", "APl"), ap), "ap_per_iou": [ap]}
        for ap in (30.0, 34.0)
    ]
    row = summarize({"eiou": runs})["eiou"]
    assert row["AP"] == [32.0, 2.8284271247461903]
    assert row["ap_per_iou"] == [[32.0, 2.8284271247461903]]
    assert "| eiou | 2 | 32.0 ± 2.8 |" in format_markdown({"eiou": row})


def test_paper_loss_weights():
    assert loss_weight("smooth_l1") == loss_weight("focal_l1") == 1.0
    assert loss_weight("giou") == loss_weight("focal_eiou") == 2.5
