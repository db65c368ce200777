"""A checkpoint save on a full disk: a clear error, the previous checkpoint intact, the
quest back in its queue (training paused until space is freed), then it resumes.

Two ways to fill the disk: a real, small tmpfs mounted on checkpoints/ (needs root and
mount rights; skipped without), and a simulated ENOSPC at the write
(REALM_FAULT=enospc_on_save, realm_kernel/store/faults.py), which runs everywhere."""

from __future__ import annotations

import errno
import subprocess

import pytest

from realm_kernel.api import Realm
from realm_kernel.store.status import TRAINING, read_status

from ..helpers import start_daemon, wait_for
from .harness import FAULT_TOML, complete_dirs, digest

pytestmark = [pytest.mark.slow, pytest.mark.reliability]


def assert_disk_full_handled(paths, realm, quest, before, daemon, fragment):
    """The run hit a full disk: what must hold right after."""
    event = wait_for(lambda: realm.sql("SELECT message, data FROM events WHERE kind = 'disk_full'"),
                     180, "the disk_full event")[0]
    assert fragment in event["data"] and quest in event["data"] and "free space" in event["data"]
    wait_for(lambda: (paths.queue("normal") / quest).exists(), 30, "the quest back in its queue")
    assert paths.control_file("pause").exists(), "training pauses until space is freed"
    assert realm.ledger.scalar("SELECT status FROM quest_status WHERE quest_id = ?", [quest]) == "queued"
    last = complete_dirs(paths)[-1]
    assert last.name == before[0] and digest(last) == before[1], "the previous checkpoint is intact"
    assert realm.checkpoints.latest().name == before[0], "no row for the failed save"
    assert not [d for d in paths.checkpoints.iterdir() if d.name.startswith(".run-")]
    assert daemon.poll() is None, "the daemon lives on"
    assert wait_for(lambda: read_status(paths, TRAINING).get("state") == "paused", 30, "paused")


def resume_to_the_end(paths, realm, quest, before):
    """After `resume`, the quest picks up from the checkpoint that survived and finishes."""
    realm.training.control("resume")
    wait_for((paths.queue("recently_completed") / quest).exists, 240, "the quest to finish")
    resumed = realm.sql("SELECT resume_from FROM runs WHERE status = 'resumed' ORDER BY ts")
    assert resumed[-1]["resume_from"].endswith(before[0]), resumed
    assert realm.checkpoints.latest().name != before[0]


def test_simulated_enospc_on_save(realm_home, procs):
    realm_home.config_file.write_text(FAULT_TOML)
    realm = Realm(realm_home.home)
    quest = realm.quests.generate("bin", 1, 160, seed=41).name
    # The first save succeeds, every later one finds the disk full.
    daemon = start_daemon(procs, realm_home, "daemon-enospc", REALM_FAULT="enospc_on_save@2")
    wait_for(lambda: realm.checkpoints.latest(), 120, "a first checkpoint")
    last = complete_dirs(realm_home)[-1]
    before = (last.name, digest(last))
    assert_disk_full_handled(realm_home, realm, quest, before, daemon, "No space left on device")
    assert procs.stop(daemon) == 0
    start_daemon(procs, realm_home, "daemon-2")
    resume_to_the_end(realm_home, realm, quest, before)


def mount_tmpfs(where, size: str) -> bool:
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                         capture_output=True, text=True)
    return out.returncode == 0


def fill(folder) -> int:
    """Write ballast until the filesystem is full; bytes written."""
    n = 0
    with open(folder / ".ballast", "wb") as f:
        try:
            while True:
                f.write(b"\0" * (1 << 20))
                f.flush()
                n += 1 << 20
        except OSError as e:
            assert e.errno == errno.ENOSPC
    return n


def test_real_full_tmpfs_under_checkpoints(realm_home, procs):
    ck = realm_home.checkpoints
    if not mount_tmpfs(ck, "256m"):
        pytest.skip("cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN)")
    try:
        realm_home.config_file.write_text(FAULT_TOML)
        realm = Realm(realm_home.home)
        quest = realm.quests.generate("bin", 1, 160, seed=43).name
        daemon = start_daemon(procs, realm_home, "daemon-tmpfs")
        wait_for(lambda: realm.checkpoints.latest(), 120, "a first checkpoint")
        realm.training.control("pause")
        wait_for(lambda: read_status(realm_home, TRAINING).get("state") == "paused", 60, "paused")
        last = complete_dirs(realm_home)[-1]
        before = (last.name, digest(last))
        assert fill(ck) > 0
        realm.paths.control_file("pause").unlink()
        assert_disk_full_handled(realm_home, realm, quest, before, daemon, "No space left on device")
        (ck / ".ballast").unlink()
        resume_to_the_end(realm_home, realm, quest, before)
        assert procs.stop(daemon) == 0
    finally:
        procs.stop_all()
        subprocess.run(["umount", "-l", str(ck)], capture_output=True)
