"""Shipping checkpoints to the shared zone (store/shipping.py) against real servers on
127.0.0.1: Debian's OpenSSH server as the NAS (tests/nas.py) and moto's S3 server; and,
end to end, a real daemon training dio-mini whose checkpoints reach the NAS while the NAS
goes away and comes back."""

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import fsspec.config
import pytest

from realm_kernel.api import Realm
from realm_kernel.store.config import RealmConfig, RetentionConfig, VaultConfig
from realm_kernel.store.shipping import Shipper, shipped_files, weights_only
from realm_kernel.store.vault import fingerprint, local_fs

from ..helpers import TEST_TOML, child_env, free_port, start_daemon, wait_for
from ..nas import Nas
from .test_vault import fake_checkpoint


def add_resume_state(row):
    """What a trainer's newest checkpoint carries beside its weights."""
    d = os.path.join(row["path"])
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth"):
        with open(os.path.join(d, name), "wb") as f:
            f.write(b"s" * 100)
    return row


@pytest.fixture
def realm(tmp_path):
    r = Realm(tmp_path / "home")
    rows = [add_resume_state(fake_checkpoint(r.paths, s, 1.0 / s)) for s in (10, 20, 30)]
    r.ledger.append("checkpoints", rows)
    return r


@pytest.fixture
def nas(procs, tmp_path, monkeypatch):
    n = Nas(procs, tmp_path / "nas")
    # fsspec's own configuration of its sftp filesystem (what FSSPEC_SFTP gives a process).
    monkeypatch.setitem(fsspec.config.conf, "sftp", n.client_options())
    return n


def shipper(realm, zone, **vault):
    config = RealmConfig(vault=VaultConfig(ship_to=zone, **vault))
    return Shipper(realm.paths, realm.ledger, config)


def zone_rows(realm, zone):
    return {r["step"]: r for r in realm.ledger.query(
        "SELECT * FROM asset_locations WHERE zone = ? AND type = 'checkpoint'", [zone])}


def test_sftp_zone_gets_weights_only_copies_and_never_an_overwrite(realm, nas):
    realm.vault.add_zone("nas", nas.url, confirmed=True)
    s = shipper(realm, "nas")
    for row in realm.ledger.query("SELECT step, path FROM checkpoint_ledger ORDER BY step"):
        s.submit(row["step"], Path(row["path"]))
    # Queued checkpoints are what retention keeps while they wait (the zone may be down).
    protected = realm.vault.protected_steps(retention=True)
    assert protected[10] == "awaiting shipping to zone nas"

    # A different checkpoint of the same name is already on the NAS: refused, untouched.
    name20 = "checkpoint-20-20260101-1200"
    theirs = nas.root / "checkpoints" / name20
    theirs.mkdir(parents=True)
    (theirs / "model.safetensors").write_bytes(b"someone else's weights")
    assert s.ship_pending() is True
    assert (theirs / "model.safetensors").read_bytes() == b"someone else's weights"
    assert sorted(p.name for p in theirs.iterdir()) == ["model.safetensors"]
    refused = realm.ledger.query("SELECT message, data FROM events WHERE kind = 'ship_refused'")
    assert len(refused) == 1 and name20 in refused[0]["message"]
    assert json.loads(refused[0]["data"]) == {"zone": "nas", "step": 20}

    # The others are on the NAS, weights-only (no optimizer, scheduler or RNG state), byte
    # for byte, and catalogued in the zone; nothing is pending any more.
    rows = zone_rows(realm, "nas")
    assert sorted(rows) == [10, 30]
    for step in (10, 30):
        local = realm.paths.checkpoints / f"checkpoint-{step}-20260101-1200"
        remote = nas.root / "checkpoints" / local.name
        assert sorted(p.name for p in remote.iterdir()) == sorted(shipped_files(local))
        assert not (remote / "optimizer.pt").exists() and (local / "optimizer.pt").exists()
        assert fingerprint(local_fs(), str(remote)) == fingerprint(local_fs(), str(local),
                                                                   keep=weights_only)
        assert rows[step]["path"] == f"checkpoints/{local.name}"
    assert s.pending() == [] and "awaiting" not in str(realm.vault.protected_steps(retention=True))
    assert not list((nas.root / "checkpoints").glob("*.partial"))

    # The same bytes already there are no copy and no refusal: recorded as present.
    s.submit(10, realm.paths.checkpoints / "checkpoint-10-20260101-1200")
    assert s.ship_pending() is True and s.pending() == []
    assert realm.vault.locate("checkpoint_10").locations[-1].zone == "nas"


def test_zone_retention_runs_on_the_zone_with_its_own_policy(realm, nas):
    realm.vault.add_zone("nas", nas.url, confirmed=True)
    policy = RetentionConfig(keep_best=0, keep_latest=1, keep_every=0)
    s = shipper(realm, "nas", retention={"nas": policy})
    realm.checkpoints.promote(10)  # the champion stays on every zone
    for step in (10, 20, 30):
        s.submit(step, realm.paths.checkpoints / f"checkpoint-{step}-20260101-1200")
    assert s.ship_pending() is True
    # On the NAS only the latest and the champion are kept (its policy); the realm home
    # keeps all three.
    assert sorted(p.name for p in (nas.root / "checkpoints").iterdir()) == [
        "checkpoint-10-20260101-1200", "checkpoint-30-20260101-1200"]
    assert sorted(zone_rows(realm, "nas")) == [10, 30]
    gone = realm.ledger.query("SELECT data FROM events WHERE kind = 'retention'")
    assert [json.loads(e["data"]) for e in gone] == [{"zone": "nas", "steps": [20]}]
    assert len(list(realm.paths.checkpoints.glob("checkpoint-*"))) == 3


def outages(realm):
    return [e["kind"] for e in realm.ledger.query(
        "SELECT kind FROM events WHERE kind IN ('zone_unreachable', 'zone_reachable') ORDER BY ts")]


def test_unreachable_zone_keeps_the_checkpoint_local_and_retries(realm, nas):
    realm.vault.add_zone("nas", nas.url, confirmed=True)
    s = shipper(realm, "nas")
    nas.stop()
    s.submit(10, realm.paths.checkpoints / "checkpoint-10-20260101-1200")
    assert s.ship_pending() is False and s.ship_pending() is False
    assert outages(realm) == ["zone_unreachable"], "one event per outage, not per try"
    assert s.pending() == [10]
    nas.start()
    assert s.ship_pending() is True and s.pending() == []
    assert (nas.root / "checkpoints" / "checkpoint-10-20260101-1200" / "model.safetensors").exists()
    assert outages(realm) == ["zone_unreachable", "zone_reachable"]


def test_s3_zone_on_a_loopback_s3_server(realm, monkeypatch):
    moto_server = pytest.importorskip("moto.server")
    pytest.importorskip("s3fs")
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                     "AWS_DEFAULT_REGION": "us-east-1"}.items():
            monkeypatch.setenv(k, v)
        monkeypatch.setitem(fsspec.config.conf, "s3",
                            {"endpoint_url": f"http://127.0.0.1:{port}"})
        fs = fsspec.filesystem("s3", skip_instance_cache=True)
        # moto keeps its buckets in process-wide state that outlives the server: a bucket
        # of its own, so the test passes again in the same process (mutmut runs many
        # sessions in one)
        bucket = f"realm-bucket-{uuid.uuid4().hex[:12]}"
        fs.mkdir(bucket)
        realm.vault.add_zone("s3", f"s3://{bucket}/realm", confirmed=True)
        s = shipper(realm, "s3")
        fs.pipe(f"{bucket}/realm/checkpoints/checkpoint-20-20260101-1200/model.safetensors",
                b"another model")
        for step in (10, 20):
            s.submit(step, realm.paths.checkpoints / f"checkpoint-{step}-20260101-1200")
        assert s.ship_pending() is True
        fs.invalidate_cache()
        got = sorted(p.rsplit("/", 1)[-1] for p in fs.find(
            f"{bucket}/realm/checkpoints/checkpoint-10-20260101-1200"))
        assert got == sorted(shipped_files(realm.paths.checkpoints / "checkpoint-10-20260101-1200"))
        assert fs.cat(f"{bucket}/realm/checkpoints/checkpoint-20-20260101-1200/"
                      "model.safetensors") == b"another model"
        assert sorted(zone_rows(realm, "s3")) == [10]
        assert realm.ledger.scalar("SELECT count(*) FROM events WHERE kind = 'ship_refused'") == 1
        assert not fs.find(f"{bucket}/realm/checkpoints/checkpoint-10-20260101-1200.partial")
    finally:
        server.stop()


@pytest.mark.slow
def test_daemon_ships_checkpoints_to_the_nas_through_an_outage(realm_home, procs, tmp_path):
    """A real daemon trains dio-mini; its checkpoints reach the NAS; with sshd stopped
    training goes on, the outage is one event and the checkpoints stay local; with sshd
    back every checkpoint is shipped."""
    nas = Nas(procs, tmp_path / "nas")
    Realm(realm_home.home).vault.add_zone("nas", nas.url, confirmed=True)
    realm_home.config_file.write_text(
        TEST_TOML + '\n[vault]\nship_to = "nas"\nship_retry_s = 0.5\nship_retry_max_s = 1\n')
    out = subprocess.run([sys.executable, "-m", "realm_kernel.cli", "quest", "generate", "bin",
                          "--level", "1", "--count", "1200", "--seed", "1"],
                         env=child_env(realm_home.home), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    daemon = start_daemon(procs, realm_home, **nas.client_env())
    realm = Realm(realm_home.home)
    ckdir = nas.root / "checkpoints"

    def shipped():
        return sorted(zone_rows(realm, "nas"))

    first = wait_for(shipped, 300, "a checkpoint on the NAS")[0]
    local = next(realm_home.checkpoints.glob(f"checkpoint-{first}-*"))
    remote = ckdir / local.name
    assert (remote / "model.safetensors").exists() and not (remote / "optimizer.pt").exists()

    nas.stop()
    down = wait_for(lambda: realm.ledger.query(
        "SELECT data FROM events WHERE kind = 'zone_unreachable'"), 300, "the outage event")
    at_outage = json.loads(down[0]["data"])["step"]
    # Training goes on: a later checkpoint is saved while the NAS is still down.
    wait_for(lambda: realm.ledger.scalar("SELECT max(step) FROM checkpoint_ledger") > at_outage,
             300, "a checkpoint saved during the outage")
    assert daemon.poll() is None
    assert at_outage not in shipped() and any(realm_home.checkpoints.glob(f"checkpoint-{at_outage}-*"))

    nas.start()
    wait_for(lambda: at_outage in shipped(), 300, "the checkpoint of the outage shipped")
    # The copy's catalogue row lands before the shipper says the zone is back: wait for it.
    wait_for(lambda: realm.ledger.scalar("SELECT count(*) FROM events WHERE kind = 'zone_reachable'"),
             60, "the zone_reachable event")
    assert realm.ledger.scalar("SELECT count(*) FROM events WHERE kind = 'zone_unreachable'") == 1
    assert (ckdir / next(realm_home.checkpoints.glob(f"checkpoint-{at_outage}-*")).name
            / ".ledger.json").exists()
    assert daemon.poll() is None


def test_the_shipper_thread_ships_in_the_background_at_a_lower_priority(realm, tmp_path):
    """Shipper.start: its own thread has what submit() queued copied (to a plain folder
    zone here) by a child process, both at a nice value 10 above the process's, so the
    training thread keeps its share of a busy machine and its GIL (store/zone_copy.py)."""
    (tmp_path / "shelf").mkdir()
    realm.vault.add_zone("shelf", str(tmp_path / "shelf"), confirmed=True)
    config = RealmConfig(vault=VaultConfig(ship_to="shelf"))
    s = Shipper.start(realm.paths, realm.ledger, config)
    try:
        s.submit(30, realm.paths.checkpoints / "checkpoint-30-20260101-1200")
        wait_for(lambda: 30 in zone_rows(realm, "shelf"), 60, "the background copy")
        assert (tmp_path / "shelf" / "checkpoints" / "checkpoint-30-20260101-1200" / ".ledger.json"
                ).exists()
        base = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, s._thread.native_id) == min(19, base + 10)
        assert copier(realm, "shelf", 30)["pid"] != os.getpid(), "copied in a child process"
        assert copier(realm, "shelf", 30)["nice"] == min(19, base + 10)
        assert os.getpriority(os.PRIO_PROCESS, 0) == base, "the process itself keeps its priority"
    finally:
        s.stop()
    assert Shipper.start(realm.paths, realm.ledger, RealmConfig()) is None, "no ship_to: no thread"


def copier(realm, zone, step):
    return json.loads(realm.ledger.scalar(
        "SELECT detail FROM asset_locations WHERE zone = ? AND step = ?", [zone, step]))["copier"]


def test_one_copy_process_serves_every_copy_and_a_dead_one_is_replaced(realm, tmp_path):
    """The copy process (store/zone_copy.py `Copier`) is started once, not per checkpoint
    (its interpreter and imports are most of a small copy's time); one that died is
    replaced at the next copy, and nothing queued is lost."""
    (tmp_path / "shelf").mkdir()
    realm.vault.add_zone("shelf", str(tmp_path / "shelf"), confirmed=True)
    s = shipper(realm, "shelf")
    for step in (10, 20):
        s.submit(step, realm.paths.checkpoints / f"checkpoint-{step}-20260101-1200")
    assert s.ship_pending() is True
    pid = copier(realm, "shelf", 10)["pid"]
    assert copier(realm, "shelf", 20)["pid"] == pid != os.getpid()
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    s.submit(30, realm.paths.checkpoints / "checkpoint-30-20260101-1200")
    assert s.ship_pending() is True and s.pending() == []
    assert copier(realm, "shelf", 30)["pid"] not in (pid, os.getpid())
    assert sorted(zone_rows(realm, "shelf")) == [10, 20, 30]


def test_the_settings_page_asks_before_changing_where_checkpoints_go(realm):
    """[vault] ship_to from the Settings page (the API) is critical: saved only when
    confirmed, and it can only name a zone a person added (the daemon checks)."""
    assert realm.settings.save({"vault.ship_to": "nas"}) == {
        "ok": False, "needs_confirmation": ["vault.ship_to"]}
    assert "ship_to" not in (realm.paths.config_file.read_text()
                             if realm.paths.config_file.exists() else "")
    assert realm.settings.save({"vault.ship_to": "nas"}, confirm=True)["ok"] is True
    # A zone nobody added: no shipper, an event saying why, nothing else happens.
    config = RealmConfig(vault=VaultConfig(ship_to="nas"))
    assert Shipper.start(realm.paths, realm.ledger, config) is None
    msg = realm.ledger.query("SELECT message FROM events WHERE kind = 'zone_unreachable'")
    assert "no zone 'nas'" in msg[0]["message"]


@pytest.mark.slow
def test_a_two_rank_battle_ships_each_checkpoint_as_rank_0_publishes_it(tmp_path, dio_mini_dir,
                                                                        procs):
    """`[training] nproc = 2` (2 gloo ranks under accelerate, services/battle_group.py):
    rank 0 publishes in its own process, and the daemon queues each checkpoint for the NAS
    as it sees its row, while the battle goes on: with the ranks paused after the first
    checkpoint, that checkpoint reaches the zone before the battle resumes. At the end every
    checkpoint of the battle is on the zone, complete (weights and sidecar, no resume
    state), and recorded once in the vault catalogue with its zone."""
    from realm_kernel.quests.formats import write_quest
    from realm_kernel.store.ledger import Ledger
    from realm_kernel.store.status import TRAINING, read_status
    from realm_kernel.train.mixed import mixed_examples

    from ..helpers import make_home, start_daemon
    from ..train.test_ranks import RANKS_TOML

    nas = Nas(procs, tmp_path / "nas")
    toml = RANKS_TOML.replace("max_steps = 40", "max_steps = 12").replace(
        "save_steps = 10", "save_steps = 4")
    home = make_home(tmp_path / "realm", dio_mini_dir,
                     toml + '\n[vault]\nship_to = "nas"\nship_retry_s = 0.5\nship_retry_max_s = 1\n')
    realm = Realm(home.home)
    realm.vault.add_zone("nas", nas.url, confirmed=True)
    led = Ledger(home, "test")
    quest = write_quest(home.inbox / "q.jsonl", mixed_examples(64, seed=7))
    start_daemon(procs, home, **nas.client_env())
    first = wait_for(lambda: led.query("SELECT step FROM checkpoints ORDER BY step"), 600,
                     "rank 0's first checkpoint")[0]["step"]
    home.control_file("pause").write_text("test")
    wait_for(lambda: read_status(home, TRAINING).get("state") == "paused", 300,
             "the 2-rank battle to pause at a step")
    wait_for(lambda: first in zone_rows(realm, "nas"), 300, "the first checkpoint on the NAS")
    assert read_status(home, TRAINING).get("state") == "paused", "shipped while the battle is on"
    assert (home.queue("processing") / quest.name).exists()
    home.control_file("pause").unlink()
    wait_for((home.queue("recently_completed") / quest.name).exists, 600, "the battle's end")

    saved = {r["step"]: Path(r["path"]).name for r in led.query(
        "SELECT step, path FROM checkpoints ORDER BY step")}
    assert len(saved) >= 3 and max(saved) == 12
    wait_for(lambda: sorted(zone_rows(realm, "nas")) == sorted(saved), 300,
             "every checkpoint of the battle on the NAS")
    for name in saved.values():
        remote = nas.root / "checkpoints" / name
        assert sorted(p.relative_to(remote).as_posix() for p in remote.rglob("*") if p.is_file()
                      ) == sorted(shipped_files(home.checkpoints / name)), name
        assert (remote / "model.safetensors").exists() and (remote / ".ledger.json").exists()
        assert not (remote / "optimizer.pt").exists()
    rows = led.query("SELECT step, count(*) AS n FROM assets WHERE zone = 'nas' "
                     "AND status = 'present' GROUP BY step")
    assert {r["step"]: r["n"] for r in rows} == dict.fromkeys(saved, 1), "each recorded once"
    assert not list((nas.root / "checkpoints").glob("*.partial"))
