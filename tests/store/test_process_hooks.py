"""What every supervised process shares (store/process.py: the instance lock, service_main,
the stack dump on SIGUSR1), the bounded logs it writes (store/logs.py), the hang rule the
Weaver's watchdog applies (store/heartbeat.py) and the fault points the reliability suite
stops a process at (store/faults.py), driven in this process: the reliability suite's
subprocesses reach them too, where no mutation run can see them."""

from __future__ import annotations

import errno
import faulthandler
import json
import os
import signal
import threading

import pytest

from realm_kernel.store import faults
from realm_kernel.store.heartbeat import overdue
from realm_kernel.store.logs import RotatingLog, log_files, pump
from realm_kernel.store.paths import RealmPaths
from realm_kernel.store.process import ALREADY_RUNNING, service_main, stacks_file, take_instance_lock

from ..helpers import wait_for


class Held(RuntimeError):
    pass


def test_the_instance_lock_names_its_holder(tmp_path):
    lock = tmp_path / "daemon.lock"
    fd = take_instance_lock(lock, Held)
    try:
        assert lock.read_text() == str(os.getpid())
        with pytest.raises(Held, match=f"^{os.getpid()}$"):
            take_instance_lock(lock, Held)  # another open of the file: flock refuses it
    finally:
        os.close(fd)
    os.close(take_instance_lock(lock, Held))  # released with its fd


def test_service_main_runs_with_its_home_and_dumps_stacks_on_sigusr1(tmp_path, capsys):
    home = tmp_path / "home"
    seen = {}

    def run(h):
        seen["home"] = h
        stacks = stacks_file(RealmPaths.at(h), os.getpid())
        os.kill(os.getpid(), signal.SIGUSR1)  # faulthandler writes from the handler itself
        seen["stacks"] = stacks.read_text()

    try:
        assert service_main(["--home", str(home)], "test", "tester", run, Held) == 0
    finally:
        faulthandler.unregister(signal.SIGUSR1)
    assert seen["home"] == str(home)
    assert "test_service_main_runs_with_its_home" in seen["stacks"]
    assert not stacks_file(RealmPaths.at(home), os.getpid()).exists(), "removed at exit"

    def held(h):
        raise Held("pid 4242 holds it")

    try:
        assert service_main(["--home", str(home)], "test", "tester", held, Held) == ALREADY_RUNNING
    finally:
        faulthandler.unregister(signal.SIGUSR1)
    assert "realm tester: pid 4242 holds it" in capsys.readouterr().err


def test_a_log_rotates_into_numbered_parts_newest_first(tmp_path):
    path = tmp_path / "logs" / "daemon.log"
    log = RotatingLog(path, max_bytes=12 * 4096, files=12)  # parts of 4096 bytes
    r, w = os.pipe()
    with os.fdopen(w, "wb") as out:
        for i in range(12):
            out.write(f"{i:02d}".encode() + b"x" * 4093 + b"\n")  # one part per line
    pump(os.fdopen(r, "rb"), log)
    log.close()
    parts = log_files(path)
    assert parts == [path, *(path.with_name(f"daemon.log.{i}") for i in range(1, 12))]
    assert [p.read_bytes()[:2] for p in parts] == [f"{i:02d}".encode() for i in range(11, -1, -1)]
    two = RotatingLog(tmp_path / "two.log", max_bytes=0, files=0)  # at least two files of 4 KiB
    assert (two.files, two.part_bytes) == (2, 4096)
    for c in b"abc":
        two.write(bytes([c]) * 4096)
    two.close()
    assert [p.read_bytes()[:1] for p in log_files(tmp_path / "two.log")] == [b"c", b"b"]


def test_the_hang_rule():
    beat = {"pid": 7, "phase": "step", "at": 1000.0, "recent_max_s": 2.0}
    assert overdue(beat, 7, factor=10, floor_s=5, save_floor_s=60, now=1025.0) == 5.0
    assert overdue(beat, 7, factor=10, floor_s=5, save_floor_s=60, now=1019.0) is None
    assert overdue({**beat, "recent_max_s": None}, 7, 10, 5, 60, now=1006.0) == 1.0
    assert overdue({**beat, "phase": "saving"}, 7, 10, 5, 60, now=1061.0) == 1.0
    assert overdue({**beat, "phase": "idle"}, 7, 10, 5, 60, now=5000.0) is None
    assert overdue(beat, 8, 10, 5, 60, now=5000.0) is None


def in_thread(target) -> threading.Thread:
    t = threading.Thread(target=target, daemon=True)  # blocks for good, as in a real process
    t.start()
    return t


def test_a_pause_point_announces_itself_and_blocks(tmp_path, monkeypatch):
    home = tmp_path / "not" / "yet"  # the status folder and its parents are made
    monkeypatch.setattr(faults, "_hits", {})
    monkeypatch.setenv(faults.PAUSE_ENV, "queue_move@2")
    faults.point("queue_move:high", home)  # the first hit passes
    faults.point("step", home)  # another point does not count
    t = in_thread(lambda: faults.point("queue_move:normal", home))
    fault = home / "status" / "fault.json"
    wait_for(lambda: fault.exists() or not t.is_alive(), 60, "the fault announced")
    data = json.loads(fault.read_text())
    assert (data["point"], data["hit"], data["pid"]) == ("queue_move:normal", 2, os.getpid())
    assert t.is_alive(), "blocked at the point"


def test_a_hung_step_hangs_once_per_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setattr(faults, "_hits", {})
    monkeypatch.setenv(faults.FAULT_ENV, "hang_step@2")
    faults.point("step", home)
    t = in_thread(lambda: faults.point("step", home))
    marker = home / "status" / ".fault-hang_step-2"
    wait_for(lambda: (marker.exists() and marker.read_text()) or not t.is_alive(), 60, "the hang")
    assert marker.read_text() == str(os.getpid()) and t.is_alive()
    # The daemon restarted after the watchdog's kill trains on: the marker is spent.
    monkeypatch.setattr(faults, "_hits", {})
    faults.point("step", home)
    faults.point("step", home)


def test_a_full_disk_on_save(monkeypatch):
    monkeypatch.setattr(faults, "_hits", {})
    monkeypatch.setenv(faults.FAULT_ENV, "enospc_on_save@2")
    faults.point("checkpoint_write", None)
    with pytest.raises(OSError) as e:
        faults.point("checkpoint_write:weights", None)
    assert e.value.errno == errno.ENOSPC and faults.is_disk_full(e.value)
    assert faults.is_disk_full(RuntimeError("write failed: No space left on device"))
    assert faults.is_disk_full(RuntimeError("Disk quota exceeded"))
    assert not faults.is_disk_full(RuntimeError("no such file"))
    monkeypatch.setenv(faults.FAULT_ENV, "nan@3")
    assert [faults.nan_step(s) for s in (2, 3, 4)] == [False, True, False]
    monkeypatch.delenv(faults.FAULT_ENV)
    assert not faults.nan_step(3)


def test_a_first_write_bigger_than_a_part_is_not_rotated_away(tmp_path):
    log = RotatingLog(tmp_path / "big.log", max_bytes=2 * 4096, files=2)
    log.write(b"x" * 5000)
    log.close()
    assert log_files(tmp_path / "big.log") == [tmp_path / "big.log"], "no empty part rotated out"
