"""Hub ids as base models (`base_model = "Qwen/Qwen3-0.6B"`), offline: a Hugging Face cache
laid out in a temp dir with dio-mini under a made-up repo id resolves and trains; an id
that is not cached is a clear setup fault naming the id and the command that fetches it,
and the quest waits in its queue."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from realm_kernel.hero_model import hub
from realm_kernel.store.config import load_config
from realm_kernel.store.ledger import Ledger
from realm_kernel.store.paths import RealmPaths

from ..helpers import TEST_TOML, child_env, wait_for

REPO_ID = "realm-test/dio-mini"
REVISION = "0123456789abcdef0123456789abcdef01234567"


def lay_out_cache(cache: Path, model_dir: Path, repo_id: str = REPO_ID) -> Path:
    """The layout huggingface_hub writes: models--org--name/{refs/main, snapshots/<rev>/}."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snap = repo / "snapshots" / REVISION
    shutil.copytree(model_dir, snap)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(REVISION)
    return snap


@pytest.fixture
def offline_cache(tmp_path, monkeypatch) -> Path:
    from huggingface_hub import constants
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def test_ids_and_folders_are_told_apart(tmp_path):
    (tmp_path / "models" / "mine").mkdir(parents=True)
    assert hub.is_hub_id("Qwen/Qwen3-0.6B", tmp_path)
    assert hub.is_hub_id("realm-test/dio-mini", tmp_path)
    for folder in ("/abs/Qwen3-0.6B", "~/models/q", "./q/r", "../q/r", "a/b/c", "models/mine",
                   "models/not-copied-yet", "plain"):
        assert not hub.is_hub_id(folder, tmp_path), folder


def test_cached_id_resolves_offline_and_a_missing_one_names_the_fetch(offline_cache, dio_mini_dir, tmp_path):
    snap = lay_out_cache(offline_cache, dio_mini_dir)
    assert hub.cached(REPO_ID) == snap and hub.fetch(REPO_ID) == snap
    home = tmp_path / "realm"
    home.mkdir()
    (home / "realm.toml").write_text(TEST_TOML + f'\n[hero]\nbase_model = "{REPO_ID}"\n')
    assert load_config(home).base_model_path(RealmPaths.at(home)) == snap
    assert hub.cached("realm-test/absent") is None
    with pytest.raises(hub.HubModelMissing) as err:
        hub.fetch("realm-test/absent")
    msg = str(err.value)
    assert "'realm-test/absent'" in msg and "hf download realm-test/absent" in msg
    assert str(offline_cache) in msg and "offline" in msg


def _home(tmp_path: Path, base_model: str) -> RealmPaths:
    home = tmp_path / "realm"
    home.mkdir()
    (home / "realm.toml").write_text(TEST_TOML + f'\n[hero]\nbase_model = "{base_model}"\n')
    paths = RealmPaths.at(home).ensure()
    rows = [{"messages": [{"role": "user", "content": f"{i} + {i}?"},
                          {"role": "assistant", "content": str(2 * i)}]} for i in range(40)]
    (paths.inbox / "q.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return paths


def _status(paths: RealmPaths) -> str | None:
    rows = Ledger(paths).query("SELECT status FROM quest_status WHERE quest_id = 'q.jsonl'")
    return rows[0]["status"] if rows else None


@pytest.mark.slow
def test_daemon_trains_from_a_cached_hub_id_offline(offline_cache, dio_mini_dir, tmp_path, procs):
    lay_out_cache(offline_cache, dio_mini_dir)
    paths = _home(tmp_path, REPO_ID)
    procs.start("daemon", [sys.executable, "-m", "realm_kernel.services.daemon", "--home", str(paths.home)],
                child_env(paths.home))
    wait_for(lambda: _status(paths) == "completed", 180, "the quest trained from the cached hub id")
    # Trained from the cache's snapshot, not from a demo hero built beside it.
    runs = Ledger(paths).query("SELECT model_path FROM runs WHERE model_path IS NOT NULL")
    assert runs and all(REVISION in r["model_path"] for r in runs), runs
    assert not (paths.home / "models" / "dio-mini").exists()
    # The battle records the hero profile it trained with, each value with its source.
    started = Ledger(paths).query("SELECT data FROM events WHERE kind = 'battle_started'")
    profile = json.loads(started[0]["data"])["profile"]
    assert profile["profile"] == "dio-mini" and profile["device"] == "any (not sized to a card)"
    assert profile["values"]["training.batch_size"] == {
        "value": 8, "source": "realm.toml (profile dio-mini would give 16)"}
    assert "bench/RESULTS.md" in profile["values"]["training.learning_rate"]["source"]


@pytest.mark.slow
def test_missing_hub_id_offline_is_a_setup_fault_and_the_quest_waits(offline_cache, tmp_path, procs):
    paths = _home(tmp_path, "realm-test/absent")
    procs.start("daemon", [sys.executable, "-m", "realm_kernel.services.daemon", "--home", str(paths.home)],
                child_env(paths.home))
    faults = wait_for(lambda: Ledger(paths).query("SELECT message FROM events WHERE kind = 'setup_fault'"),
                      120, "the setup fault")
    assert "'realm-test/absent'" in faults[0]["message"]
    assert "hf download realm-test/absent" in faults[0]["message"]
    assert _status(paths) != "failed" and not list(paths.queue("failed").iterdir())


@pytest.mark.slow
def test_realm_train_takes_a_hub_id_for_its_model(offline_cache, dio_mini_dir, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from realm_kernel.cli import app
    snap = lay_out_cache(offline_cache, dio_mini_dir)
    home = tmp_path / "realm"
    home.mkdir()
    (home / "realm.toml").write_text(TEST_TOML)
    rows = [{"messages": [{"role": "user", "content": f"{i} + {i}?"},
                          {"role": "assistant", "content": str(2 * i)}]} for i in range(16)]
    quest = tmp_path / "q.jsonl"
    quest.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["--home", str(home), "train", str(quest), "--max-steps", "1",
                                   "--model", REPO_ID, "--output-dir", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert f"training {snap}" in res.stderr
    res = CliRunner().invoke(app, ["--home", str(home), "train", str(quest), "--model", "realm-test/absent"])
    assert res.exit_code == 2 and "hf download realm-test/absent" in res.stderr, res.output
