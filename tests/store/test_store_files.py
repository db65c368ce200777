"""Small files the realm keeps and the rules around them, driven on real folders: the
batch split a battle backed off to and the measured peaks (store/batch_fit.py), DEF's
fixed held-out sets (store/heldout.py), a node's checkpoint cache (store/fetch.py), the
battle controls' file names (store/paths.py), what counts as resume state
(store/checkpoints.py), and a backup that changes while it is restored (store/backup.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from realm_kernel.api import Realm
from realm_kernel.store import backup, batch_fit
from realm_kernel.store.backup_manifest import BackupError
from realm_kernel.store.checkpoints import carries_resume_state
from realm_kernel.store.confine import PathRefused
from realm_kernel.store.fetch import CACHE_ENV, cache_root
from realm_kernel.store.heldout import fixed_set
from realm_kernel.store.paths import RealmPaths


@pytest.fixture
def paths(tmp_path):
    return RealmPaths.at(tmp_path / "home").ensure()


# The two smallest checks of the file, kept this small on purpose: a mutation run tries a
# mutant's fastest tests first, and these must come before tests/train's (their fixture
# builds dio-mini, which alone can outlast the run's time limit for such a mutant).
def test_a_split_written_is_read_back(tmp_path):
    paths = RealmPaths.at(tmp_path)
    (tmp_path / "status").mkdir()
    (tmp_path / "status" / "batch_fit.json").write_text('{"k": {"micro_batch": 3}}')
    assert batch_fit.remembered(paths, "k") == {"micro_batch": 3}


def test_a_split_remembered_lands_in_its_file(tmp_path):
    batch_fit.remember(RealmPaths.at(tmp_path), "k", micro_batch=3)
    assert json.loads((tmp_path / "status" / "batch_fit.json").read_text())["k"]["micro_batch"] == 3


def test_a_remembered_batch_split_per_card_model_and_length(paths):
    key = batch_fit.fit_key("cpu", "Qwen/Qwen3-0.6B", 512)
    assert key == "cpu|Qwen/Qwen3-0.6B|512" and batch_fit.remembered(paths, key) is None
    batch_fit.remember(paths, key, micro_batch=2, gradient_accumulation_steps=8)
    batch_fit.remember(paths, batch_fit.fit_key("a100", "Qwen/Qwen3-0.6B", 1024), micro_batch=8)
    fit = batch_fit.remembered(paths, key)
    assert (fit["micro_batch"], fit["gradient_accumulation_steps"]) == (2, 8) and fit["measured"]
    assert json.loads((paths.status / "batch_fit.json").read_text())[key]["micro_batch"] == 2
    assert [f["card"] for f in batch_fit.measured_for(paths, "Qwen/Qwen3-0.6B", 512)] == ["cpu"]
    assert "max_length" not in batch_fit.measured_for(paths, "Qwen/Qwen3-0.6B", 512)[0]
    assert batch_fit.measured_for(paths, "Qwen/Qwen3-1.7B", 512) == []
    batch_fit.remember(paths, "cpu|odd", micro_batch=1)  # no length in the key
    assert batch_fit.measured_for(paths, "Qwen/Qwen3-0.6B", 512)[0]["card"] == "cpu"


def test_measured_peaks_are_found_by_the_presets_short_name(paths):
    batch_fit.record_peak(paths, batch_fit.fit_key("cpu", "Qwen/Qwen3-0.6B", 128), estimate=2e9,
                          max_memory_allocated=1.5e9, micro_batch=4, error=0.25)
    batch_fit.record_peak(paths, "cpu|Qwen/Qwen3-0.6B|auto", estimate=1e9)
    peaks = batch_fit.peaks_for(paths, "qwen3-0.6b")
    assert [(p["card"], p["max_length"]) for p in peaks] == [("cpu", 128), ("cpu", None)]
    assert batch_fit.peaks_for(paths, "Qwen/Qwen3-0.6B/") == peaks
    text = batch_fit.describe_peak(peaks[0])
    assert text.startswith("measured on cpu (") and "peak allocated 1.50 GB" in text
    assert "the calculator said 2.00 GB for max_length 128, micro-batch 4, estimate +25% off" in text


def test_the_fixed_held_out_set_is_made_once_and_kept(paths):
    made = []

    def make():
        made.append(1)
        return [{"messages": [{"role": "user", "content": "1+1"}]}, {"messages": []}]

    first = fixed_set(paths, "bin", 1, make)
    assert first == make()[:2] and (paths.heldout / "bin-L1.jsonl").is_file()
    assert fixed_set(paths, "bin", 1, lambda: [{"other": True}]) == first, "never replaced"
    assert len(made) == 2, "made once by fixed_set (and once by this test)"
    with pytest.raises(PathRefused, match="the fixed held-out set"):
        fixed_set(paths, "../x", 1, make)


def test_a_nodes_checkpoint_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    monkeypatch.delenv(CACHE_ENV, raising=False)
    assert cache_root() == (tmp_path / "me" / ".cache" / "realm" / "checkpoints").resolve()
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "node"))
    assert cache_root() == (tmp_path / "node").resolve() and (tmp_path / "node").is_dir()
    assert cache_root(tmp_path / "given") == (tmp_path / "given").resolve()


def test_a_battle_control_names_its_file(paths):
    assert paths.control_file("pause") == paths.home / "control" / "pause"
    with pytest.raises(ValueError, match="unknown control 'explode'; expected one of"):
        paths.control_file("explode")


def test_resume_state_is_an_optimizer_file_of_either_format(tmp_path):
    for name in ("optimizer.pt", "optimizer.bin"):
        d = tmp_path / name
        d.mkdir()
        assert not carries_resume_state(d)
        (d / name).write_bytes(b"state")
        assert carries_resume_state(d), name


def test_a_backup_that_changes_while_it_is_restored_is_refused(tmp_path, monkeypatch):
    old = Realm(tmp_path / "old")
    old.ledger.event("from_the_backup", "in the backup")
    snap = Path(old.backup(tmp_path / "snap")["path"])
    live = RealmPaths.at(tmp_path / "live").ensure()
    seg = sorted((snap / "ledger" / "events").rglob("*.parquet"))[-1]
    real = backup._refuse_while_a_daemon_runs

    def then_a_writer_changes_the_backup(p):  # after the whole backup was checked
        real(p)
        data = seg.read_bytes()
        seg.unlink()  # a hard link of the old realm's segment: a new file, not through it
        seg.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))

    monkeypatch.setattr(backup, "_refuse_while_a_daemon_runs", then_a_writer_changes_the_backup)
    with pytest.raises(BackupError, match=f"{seg} changed while it was restored"):
        backup.restore(live, snap)
    assert not list(live.home.glob(".restoring-*")), "the staged copy is removed"


def test_an_atomic_write_goes_through_a_hidden_tmp_file_beside_it(tmp_path, monkeypatch):
    """Half-written files are named `.<name>.<random>.tmp` in the same folder: the inbox
    watcher skips `.tmp` files (services/daemon.py IGNORED_SUFFIXES) and no reader globbing
    `*.json` or `*.jsonl` ever sees one. The rename is the real one, watched on its way."""
    from realm_kernel.store import paths as paths_mod
    renames = []
    real = paths_mod.os.replace
    monkeypatch.setattr(paths_mod.os, "replace", lambda a, b: (renames.append((a, b)), real(a, b))[1])
    target = tmp_path / "status" / "training.json"
    paths_mod.atomic_write_text(target, "{}")
    [(tmp, dest)] = renames
    assert dest == target and target.read_text() == "{}"
    assert Path(tmp).parent == target.parent and Path(tmp).name.startswith(".training.json.")
    assert Path(tmp).name.endswith(".tmp") and not Path(tmp).exists()


def test_a_status_file_and_the_heartbeats_end_read_back(paths):
    from realm_kernel.store.heartbeat import Heartbeat, read_beat
    from realm_kernel.store.status import TRAINING, read_status, write_status
    assert read_status(paths, TRAINING) == {}
    write_status(paths, TRAINING, state="training", step=3)
    got = read_status(paths, TRAINING)
    assert got["state"] == "training" and got["step"] == 3 and got["updated"] > 0
    beat = Heartbeat(paths)
    beat.beat("step", 4)
    beat.end()
    end = read_beat(paths)
    assert end["phase"] == "idle" and end["at"] > 0
