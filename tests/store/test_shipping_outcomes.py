"""Shipping's outcomes as the ledger and the zone show them (store/shipping.py), on a plain
folder zone and a file:// zone (the same fsspec calls an sftp:// or s3:// zone makes;
tests/store/test_shipping.py runs the real SFTP and S3 servers): a checkpoint with files
in subfolders, one deleted before it was shipped, an outage and its end, the zone's own
retention, and the options a zone's connection gets."""

from __future__ import annotations

import json
import logging
import shutil

import pytest

from realm_kernel.api import Realm
from realm_kernel.store.config import RealmConfig, RetentionConfig, VaultConfig
from realm_kernel.store.shipping import (
    CONNECT_TIMEOUT_S,
    Shipper,
    connect_options,
    prune_zone,
    ship_checkpoint,
)

from .test_vault import fake_checkpoint

NAME = "checkpoint-{}-20260101-1200"


@pytest.fixture
def realm(tmp_path):
    r = Realm(tmp_path / "home")
    r.ledger.append("checkpoints", [fake_checkpoint(r.paths, s, 1.0 / s) for s in (10, 20, 30)])
    shelf = tmp_path / "shelf"
    shelf.mkdir()
    r.vault.add_zone("shelf", f"file://{shelf}", confirmed=True)
    return r


def shipper(realm, **vault):
    return Shipper(realm.paths, realm.ledger, RealmConfig(vault=VaultConfig(ship_to="shelf", **vault)))


def events(realm, kind):
    return [(e["message"], json.loads(e["data"]) if e["data"] else None) for e in realm.ledger.query(
        "SELECT message, data FROM events WHERE kind = ? ORDER BY ts", [kind])]


def zone_row(realm, step):
    return realm.ledger.query("SELECT * FROM assets WHERE zone = 'shelf' AND step = ? "
                              "ORDER BY ts DESC LIMIT 1", [step])[0]


def test_a_checkpoint_with_subfolders_is_shipped_whole(realm, tmp_path, caplog):
    ck = realm.paths.checkpoints / NAME.format(20)
    (ck / "tokenizer").mkdir()
    (ck / "tokenizer" / "vocab.json").write_text('{"a": 0}')
    s = shipper(realm)
    s.submit(20, ck)
    with caplog.at_level(logging.INFO, logger="realm.shipping"):
        assert s.ship_pending() is True
    shipped = tmp_path / "shelf" / "checkpoints" / ck.name
    assert (shipped / "tokenizer" / "vocab.json").read_text() == '{"a": 0}'
    assert (shipped / "model.safetensors").read_bytes() == b"w" * 20
    row = zone_row(realm, 20)
    assert (row["status"], row["path"], json.loads(row["detail"])["shipped_from"]) == (
        "present", f"checkpoints/{ck.name}", "local")
    assert row["bytes"] == sum(f.stat().st_size for f in ck.rglob("*") if f.is_file())
    assert "checkpoint at step 20 shipped on zone shelf" in [r.getMessage() for r in caplog.records]
    # Shipped again: the same bytes are there already.
    assert ship_checkpoint(realm.vault, 20, "shelf") == "already there"


def test_a_checkpoint_deleted_before_shipping_is_recorded_gone(realm):
    shutil.rmtree(realm.paths.checkpoints / NAME.format(30))
    assert ship_checkpoint(realm.vault, 30, "shelf") == "gone"
    row = zone_row(realm, 30)
    assert row["status"] == "deleted" and json.loads(row["detail"]) == {
        "by": "shipping", "why": "deleted locally before it was shipped"}
    assert ship_checkpoint(realm.vault, 999, "shelf") == "gone"
    assert zone_row(realm, 999)["name"] == "step 999"


def test_an_outage_is_one_event_and_its_end_another(realm, tmp_path):
    """The zone's root replaced by a file: every copy fails until the folder is back."""
    shelf = tmp_path / "shelf"
    shelf.rmdir()
    shelf.write_text("not a folder")
    s = shipper(realm)
    s.submit(10, realm.paths.checkpoints / NAME.format(10))
    assert s.ship_pending() is False and s.ship_pending() is False
    [(message, data)] = events(realm, "zone_unreachable")
    assert message.startswith("Zone shelf unreachable (") and "step 10 stays local" in message
    assert data["zone"] == "shelf" and data["step"] == 10 and data["error"]
    assert s.pending() == [10] and events(realm, "zone_reachable") == []
    shelf.unlink()
    shelf.mkdir()
    assert s.ship_pending() is True and s.pending() == []
    assert events(realm, "zone_reachable") == [("Zone shelf is reachable again", {"zone": "shelf"})]
    assert (shelf / "checkpoints" / NAME.format(10) / ".ledger.json").exists()


def test_the_zones_own_retention_prunes_there_only(realm, tmp_path):
    policy = RetentionConfig(keep_best=0, keep_latest=1, keep_every=0)
    s = shipper(realm, retention={"shelf": policy})
    for step in (10, 20, 30):
        s.submit(step, realm.paths.checkpoints / NAME.format(step))
    assert s.ship_pending() is True
    assert sorted(p.name for p in (tmp_path / "shelf" / "checkpoints").iterdir()) == [NAME.format(30)]
    for step in (10, 20):
        row = zone_row(realm, step)
        assert row["status"] == "deleted" and json.loads(row["detail"]) == {"by": "zone retention"}
    assert events(realm, "retention")[-1] == (
        "Retention removed 1 checkpoint(s) from zone shelf", {"zone": "shelf", "steps": [20]})
    assert len(list(realm.paths.checkpoints.glob("checkpoint-*"))) == 3, "the home keeps its own"
    # No policy for the zone, or one not applied automatically: nothing is pruned.
    assert prune_zone(realm.vault, "shelf", VaultConfig(ship_to="shelf")) == []
    off = VaultConfig(ship_to="shelf", retention={"shelf": RetentionConfig(keep_latest=1, auto=False)})
    assert prune_zone(realm.vault, "shelf", off) == []


def test_the_shipper_thread_never_holds_the_process_open(realm):
    s = Shipper.start(realm.paths, realm.ledger, RealmConfig(vault=VaultConfig(ship_to="shelf")))
    try:
        assert s._thread.daemon and s._thread.is_alive()
    finally:
        s.stop()


def test_connect_options_give_ssh_zones_a_timeout():
    timeouts = {"timeout": CONNECT_TIMEOUT_S, "banner_timeout": CONNECT_TIMEOUT_S}
    for url in ("sftp://nas/realm", "ssh://nas/realm", "SFTP://nas/realm"):
        assert connect_options(url) == timeouts, url
    for url in ("s3://bucket/realm", "file:///mnt/nas", "/mnt/nas"):
        assert connect_options(url) == {}, url


def test_a_different_checkpoint_in_the_way_is_refused_with_its_reason(realm, tmp_path):
    theirs = tmp_path / "shelf" / "checkpoints" / NAME.format(10)
    theirs.mkdir(parents=True)
    (theirs / "model.safetensors").write_bytes(b"another")
    s = shipper(realm)
    s.submit(10, realm.paths.checkpoints / NAME.format(10))
    assert s.ship_pending() is True
    [(message, data)] = events(realm, "ship_refused")
    assert message == (f"zone 'shelf' already holds a different 'checkpoints/{NAME.format(10)}'; nothing "
                       "was overwritten (remove or rename it there first)")
    assert data == {"zone": "shelf", "step": 10}


def test_a_shipping_zone_nobody_added_is_an_event(realm):
    config = RealmConfig(vault=VaultConfig(ship_to="nas"))
    assert Shipper.start(realm.paths, realm.ledger, config) is None
    [(message, data)] = events(realm, "zone_unreachable")
    assert message.startswith("[vault] ship_to: ") and data["zone"] == "nas"
    assert "no zone 'nas'" in data["error"]


def test_a_checkpoint_gone_before_shipping_keeps_its_name(realm):
    shutil.rmtree(realm.paths.checkpoints / NAME.format(20))
    assert ship_checkpoint(realm.vault, 20, "shelf") == "gone"
    assert zone_row(realm, 20)["name"] == NAME.format(20)
