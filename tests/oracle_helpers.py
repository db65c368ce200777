"""A realm with a few real dio-mini checkpoints (trained once per test session), and the
OpenAI-compatible stub server started on 127.0.0.1."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import requests

import realm_skills as skills
from realm_kernel.store.config import load_config
from realm_kernel.store.ledger import Ledger
from realm_kernel.store.paths import RealmPaths
from realm_kernel.train import Job, TrainerEngine

from .helpers import child_env, free_port, make_home, wait_for

STEPS = (10, 20, 30)  # save_steps = 10 in TEST_TOML
_built: dict[str, Path] = {}


def trained_home(tmp_path_factory, dio_mini_dir: Path) -> Path:
    """dio-mini trained 30 steps on BIN L1: checkpoints at steps 10, 20 and 30."""
    if "home" not in _built:
        paths = make_home(tmp_path_factory.mktemp("oracle") / "realm", dio_mini_dir)
        ex = [p.as_example() for p in skills.generate("bin", 1, 8 * STEPS[-1], seed=5)]
        cfg = load_config(paths.home).training.model_copy(update={"max_steps": STEPS[-1],
                                                                   "eval_fraction": 0.0})
        job = Job(quest_id="oracle.jsonl", examples=ex, model_path=paths.dio_mini, run_id="oracle",
                  training=cfg, skill="bin", skill_level=1)
        result = TrainerEngine(paths, Ledger(paths, "test")).run_job(job)
        assert result.success, result.error_message
        _built["home"] = paths.home
    return _built["home"]


def copy_home(src: Path, dest: Path) -> RealmPaths:
    """A private copy: the ledger's views use absolute paths, so rows keep pointing at
    the shared checkpoints (read-only for every test)."""
    def skip(folder: str, names: list[str]) -> set[str]:
        return {"checkpoints", "ledger.duckdb"} & set(names) if Path(folder) == src else set()

    shutil.copytree(src, dest, symlinks=True, ignore=skip)
    return RealmPaths.at(dest)


@pytest.fixture
def oracle_home(tmp_path_factory, dio_mini_dir, tmp_path, monkeypatch) -> RealmPaths:
    paths = copy_home(trained_home(tmp_path_factory, dio_mini_dir), tmp_path / "realm")
    monkeypatch.setenv("REALM_HOME", str(paths.home))
    return paths


def start_stub(procs, model_dir: Path, served_name: str, name: str = "stub", *,
               api_key: str | None = None, answer_as: str | None = None) -> str:
    """tests/openai_stub.py serving one model, as vLLM does; returns its base URL. With
    `api_key` it wants that Bearer token; with `answer_as` its answers name another model."""
    port = free_port()
    extra = (["--api-key", api_key] if api_key else []) + (["--answer-as", answer_as] if answer_as else [])
    procs.start(name, [sys.executable, str(Path(__file__).parent / "openai_stub.py"), str(model_dir),
                       "--served-model-name", served_name, "--port", str(port), *extra],
                child_env(model_dir))
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    wait_for(lambda: requests.get(f"{url}/v1/models", headers=headers, timeout=2).ok, 90,
             "the OpenAI-compatible stub")
    return url
