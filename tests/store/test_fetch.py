"""A cluster node's checkpoint fetch by step (store/fetch.py): copied once from the first
source that has exactly that step, then read from the node's cache; never a wrong step."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from realm_kernel.store.confine import PathRefused
from realm_kernel.store.fetch import FetchError, fetch_checkpoint, is_step
from realm_kernel.store.paths import SIDECAR, atomic_write_json


def checkpoint(where: Path, step: int, name: str | None = None) -> Path:
    """A complete checkpoint folder as the engine publishes it: config, weights, sidecar."""
    d = where / (name or f"checkpoint-{step}-20261206-1000")
    d.mkdir(parents=True)
    (d / "config.json").write_text('{"model_type": "qwen3"}')
    (d / "model.safetensors").write_bytes(b"w" * 1024 + step.to_bytes(4, "little"))
    atomic_write_json(d / SIDECAR, {"name": d.name, "step": step})
    return d


def test_a_checkpoint_is_fetched_by_step_then_read_from_the_node_cache(tmp_path):
    src = checkpoint(tmp_path / "nas", 30)
    cache = tmp_path / "cache"
    got = fetch_checkpoint(30, [f"file://{src}"], cache)
    assert got == (cache / src.name).resolve() and is_step(got, 30)
    assert (got / "model.safetensors").read_bytes() == (src / "model.safetensors").read_bytes()
    # The source gone (the NAS unreachable): the cached copy still serves step 30.
    shutil.rmtree(src)
    assert fetch_checkpoint(30, [f"file://{src}"], cache) == got
    assert not list(cache.glob(".partial-*")), "no half-copied folder is left behind"


def test_a_source_with_another_step_or_a_half_written_folder_is_never_used(tmp_path):
    wrong = checkpoint(tmp_path / "a", 40, name="checkpoint-50-20261206-1000")  # says 40 inside
    half = checkpoint(tmp_path / "b", 50)
    (half / SIDECAR).unlink()  # not published yet
    good = checkpoint(tmp_path / "c", 50)
    cache = tmp_path / "cache"
    with pytest.raises(FetchError, match=r"step 50.*not a complete checkpoint of step 50"):
        fetch_checkpoint(50, [str(wrong), str(half)], cache)
    # The first good source wins after the bad ones; the bad copies left nothing.
    assert is_step(fetch_checkpoint(50, [str(wrong), str(half), str(good)], cache), 50)
    assert sorted(p.name for p in cache.iterdir()) == [good.name]
    with pytest.raises(FetchError, match="no source"):
        fetch_checkpoint(50, [], cache)


def test_a_source_name_cannot_place_the_copy_outside_the_cache(tmp_path):
    with pytest.raises(PathRefused):
        fetch_checkpoint(7, [str(tmp_path / "x" / "..")], tmp_path / "cache")
