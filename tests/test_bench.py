"""The benchmark scripts run and write their figures (no assertion on wall time)."""

import json
import subprocess
import sys

import pytest

from realm_kernel.store.paths import REPO_ROOT

pytestmark = pytest.mark.slow


def run_bench(tmp_path, script: str, name: str, *args: str) -> dict:
    """Run bench/SCRIPT with its results in tmp_path; the figures it recorded as NAME."""
    out = tmp_path / "results"
    run = subprocess.run([sys.executable, str(REPO_ROOT / "bench" / script), *args,
                          "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert name in (tmp_path / "RESULTS.md").read_text()
    return json.loads((out / f"{name}.json").read_text())


def test_train_cpu_bench_writes_its_figures(tmp_path):
    figures = run_bench(tmp_path, "train_cpu.py", "train_cpu", "--steps", "4", "--save-steps", "2",
                        "--pairs", "1", "--models", "dio-mini")
    # The ratio is ours over the baseline measured in the same run, not a stray number.
    assert figures["dio_mini_tokens_per_s"] > 0 and figures["dio_mini_baseline_tokens_per_s"] > 0
    assert figures["tokens_per_s_ratio"] == pytest.approx(
        figures["dio_mini_tokens_per_s"] / figures["dio_mini_baseline_tokens_per_s"], rel=0.01)
    assert 0 < figures["dio_mini_packing_efficiency"] <= 1
    # Our held-out loss and publishing at each save: timed, a share of our training time.
    assert 0 < figures["dio_mini_extra_save_work_share"] < 1
    # Packing computes fewer pad tokens than padding to the longest of each batch, and the
    # ceiling is the quotient of the two fills.
    assert 0 < figures["dio_mini_baseline_fill"] < figures["dio_mini_fill"] <= 1
    assert figures["dio_mini_compute_ceiling_ratio"] == pytest.approx(
        figures["dio_mini_fill"] / figures["dio_mini_baseline_fill"], rel=0.01)
    assert figures["machine"] and figures["date"]
    assert "train_cpu" in (tmp_path / "RESULTS.md").read_text()


def test_shipping_bench_writes_its_figures(tmp_path):
    figures = run_bench(tmp_path, "shipping.py", "shipping", "--pairs", "1", "--model", "dio-mini",
                        "--steps", "4", "--save-steps", "2")
    # Both ratios are ours over the baseline measured in the same run.
    assert figures["ship_vs_scp_ratio"] == pytest.approx(
        figures["ship_mb_per_s"] / figures["scp_mb_per_s"], rel=0.05)
    assert figures["shipping_vs_not_ratio"] == pytest.approx(
        figures["tokens_per_s_shipping"] / figures["tokens_per_s_not_shipping"], rel=0.05)
    assert figures["checkpoint_mb"] > 1 and figures["checkpoints_saved_per_run"] == 2
    assert figures["machine"] and figures["date"] and figures["load_before"]


def test_gpu_train_script_runs_tiny_on_cpu(tmp_path):
    """The device script is ready: its --tiny mode runs both parts here."""
    figures = run_bench(tmp_path, "gpu_train.py", "gpu_train_tiny", "--tiny", "--steps", "2",
                        "--pairs", "1")
    assert figures["tokens_per_s"] > 0 and figures["baseline_tokens_per_s"] > 0
    assert figures["tokens_per_s_ratio"] == pytest.approx(
        figures["tokens_per_s"] / figures["baseline_tokens_per_s"], rel=0.01)
    assert figures["pair_ratios"] == [figures["tokens_per_s_ratio"]]
    assert 0 < figures["packing_efficiency"] <= 1 and figures["vram_estimate_bytes"] > 0
    # The engine records a battle's peak on CUDA only: off it, no battle figures.
    assert not [k for k in figures if k.startswith(("speed_battle_", "memory_battle_"))]


def test_eval_loss_bench_writes_its_figures(tmp_path):
    figures = run_bench(tmp_path, "eval_loss.py", "eval_loss", "--rows", "1", "--length", "256",
                        "--chunk", "64", "--pairs", "1")
    assert figures["plain_largest_logits_bytes"] == 256 * figures["vocab"] * 4
    assert figures["chunked_largest_logits_bytes"] == 64 * figures["vocab"] * 4
    assert figures["loss_abs_diff"] < 1e-4 and len(figures["pair_ratios"]) == 1


def test_skills_bench_writes_its_figures(tmp_path):
    figures = run_bench(tmp_path, "skills_bench.py", "skills", "--n", "30", "--repeats", "1")
    for key in ("bin_L1_per_s", "bin_L30_per_s", "sy_L50_per_s", "rg_word_ladder_per_s",
                "rg_bitwise_arithmetic_per_s", "sy_L25_vs_letter_jumble_ratio"):
        assert figures[key] > 0
    assert figures["sy_L25_vs_letter_jumble_ratio"] == pytest.approx(
        figures["sy_L25_per_s"] / figures["rg_letter_jumble_per_s"], rel=0.02, abs=0.01)
    assert figures["min_ratio"] == min(v for k, v in figures.items() if k.endswith("_ratio")
                                       and k != "min_ratio")
    assert figures["baseline"].startswith("reasoning-gym ")
    assert "`skills`" in (tmp_path / "RESULTS.md").read_text()



def test_ledger_bench_writes_its_figures(tmp_path):
    figures = run_bench(tmp_path, "ledger.py", "ledger", "--rows", "20000", "--write-rows", "4000",
                        "--batch", "500", "--polls", "3", "--readers", "2")
    assert figures["tavern_poll_ms"] > 0 and figures["write_rows_per_s_with_readers"] > 0
    assert figures["rows_lost"] == 0 and figures["rows_doubled"] == 0
    assert figures["rows_lost_or_doubled"] == 0 and figures["rows_after"] == 28000
    assert figures["reader_polls_during_writes"] > 0, "the readers never polled during the writes"
    assert figures["write_ratio_with_readers"] == pytest.approx(
        figures["write_rows_per_s_with_readers"] / figures["write_rows_per_s_alone"], rel=0.01)


def test_ledger_notebook_runs_on_a_real_ledger(tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    from realm_kernel.api import Realm
    monkeypatch.setenv("REALM_HOME", str(tmp_path))
    realm = Realm(tmp_path)
    realm.ledger.append("checkpoints", [{"step": 10, "name": "checkpoint-10-20260101-1200",
                                         "path": str(tmp_path), "loss": 1.0, "val_loss": 1.1,
                                         "skill": "bin", "skill_level": 1}])
    realm.ledger.append("metrics", [{"step": s, "loss": 1.0 / s} for s in range(1, 30)])
    realm.ledger.append("runs", [{"run_id": "a", "status": "started", "step_start": 0},
                                 {"run_id": "a", "status": "completed", "step_start": 0, "step_end": 29}])
    realm.ledger.append("primitive_accuracy", [{"skill": "bin", "primitive_id": "bin_add", "accuracy": 0.4}])
    realm.ledger.ensure_views()
    nb = nbformat.read(REPO_ROOT / "notebooks" / "Ledger.ipynb", as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
                   ).execute()
    text = "\n".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
                     for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "bin_add" in text and "checkpoint-10-20260101-1200" in text


def test_quest_latency_bench_writes_its_figures(tmp_path):
    figures = run_bench(tmp_path, "quest_latency.py", "quest_latency", "--rounds", "1", "--examples", "16")
    assert len(figures["runs"]) == 1
    assert figures["min_s"] <= figures["drop_to_first_step_s"] <= figures["max_s"]
    # Causal order, not speed: a quest is queued after it is dropped, and its first step
    # comes after the inbox settle the daemon waits for.
    assert figures["admit_s"] > 0 and figures["start_s"] >= 0 and figures["first_step_s"] > 0
    assert figures["drop_to_first_step_s"] >= figures["settle_seconds"]
