"""VaultKeeper against zones other than the realm home (store/vault.py), on a real ledger:
what a zone's catalogue rows say (paths, bytes, steps, where each copy came from), what
a scan of an fsspec zone finds, retention over a zone's copies, and the events the
destructive calls leave behind (what a person reads in `realm ledger` afterwards)."""

from __future__ import annotations

import json

import pytest

from realm_kernel.api import Realm
from realm_kernel.store.config import RetentionConfig
from realm_kernel.store.paths import RealmPaths
from realm_kernel.store.vault import LocateResult, Location

from .test_vault import fake_checkpoint

STEPS = (10, 20, 30, 40)


@pytest.fixture
def realm(tmp_path):
    paths = RealmPaths.at(tmp_path / "home").ensure()
    r = Realm(paths.home)
    r.ledger.append("checkpoints", [fake_checkpoint(paths, s, 1.0 + s / 100) for s in STEPS])
    return r


def fake_row(realm, step):
    """The ledger row of one of the fixture's checkpoints, as saved."""
    name = f"checkpoint-{step}-20260101-1200"
    return {"step": step, "name": name, "path": str(realm.paths.checkpoints / name), "loss": 1.0}


def latest_rows(realm, asset_id):
    """Every catalogue row of an asset, newest last (status included)."""
    return realm.ledger.query("SELECT * FROM assets WHERE asset_id = ? ORDER BY ts", [asset_id])


def last_event(realm, kind):
    rows = realm.ledger.query("SELECT message, data FROM events WHERE kind = ? ORDER BY ts DESC LIMIT 1",
                              [kind])
    assert rows, f"no {kind} event"
    return rows[0]["message"], json.loads(rows[0]["data"]) if rows[0]["data"] else None


def zone_tree(root):
    """A zone laid out as a realm home: two checkpoints, a model, data and a config."""
    for step in (100, 200):
        d = root / "checkpoints" / f"checkpoint-{step}-20260101-1200"
        d.mkdir(parents=True)
        (d / "config.json").write_text("{}")
        (d / "model.safetensors").write_bytes(b"z" * step)
    (root / "checkpoints" / "not-a-checkpoint").mkdir()
    (root / "checkpoints" / "not-a-checkpoint" / "config.json").write_text("{}")
    (root / "models" / "far-model").mkdir(parents=True)
    (root / "models" / "far-model" / "config.json").write_text('{"a": 1}')
    (root / "data").mkdir()
    (root / "data" / "set.jsonl").write_text('{"x": 1}\n')
    (root / "data" / ".hidden.jsonl").write_text("{}\n")
    (root / "queue" / "low").mkdir(parents=True)
    (root / "queue" / "low" / "later.parquet").write_bytes(b"PAR1")
    (root / "realm.toml").write_text("[realm]\n")


def test_a_zone_added_is_listed_with_its_url_and_kind(realm, tmp_path):
    nas = tmp_path / "nas"
    nas.mkdir()
    got = realm.vault.add_zone("nas", f"file://{nas}", "the NAS", confirmed=True)
    assert got == {"zone_id": "nas", "url": f"file://{nas}", "kind": "fsspec", "detail": "the NAS"}
    folder = realm.vault.add_zone("far", str(tmp_path / "far"), confirmed=True)
    assert folder["kind"] == "local"
    zones = {z["zone_id"]: z for z in realm.vault.zones()}
    assert zones["nas"]["url"] == f"file://{nas}" and zones["nas"]["kind"] == "fsspec"
    assert zones["nas"]["detail"] == "the NAS" and zones["far"]["kind"] == "local"
    message, _ = last_event(realm, "zone_added")
    assert message == f"Zone far joins the vault ({tmp_path / 'far'})"
    assert realm.vault.stats()["zones"] == 3


def test_locations_name_the_copy_in_each_zone(realm, tmp_path):
    """A location's url is the zone's root joined with the asset's path: a URL for an
    fsspec zone, a folder path for a plain one; bytes are the copy's."""
    nas, far = tmp_path / "nas", tmp_path / "far"
    nas.mkdir()
    far.mkdir()
    realm.vault.add_zone("nas", f"file://{nas}/", confirmed=True)  # a trailing slash is one root
    realm.vault.add_zone("far", str(far), confirmed=True)
    rel = "checkpoints/checkpoint-20-20260101-1200"
    at_nas = realm.vault.transfer("checkpoint_20", "nas")
    assert at_nas == Location(zone="nas", path=rel, url=f"file://{nas}/{rel}", local=False,
                              bytes=at_nas.bytes)
    at_far = realm.vault.transfer("checkpoint_20", "far", from_zone="nas")
    assert at_far.url == str(far / rel) and not at_far.local
    # Each transfer is a row of that zone, with the step and where it came from.
    rows = {r["zone"]: r for r in latest_rows(realm, "checkpoint_20")}
    assert rows["nas"]["step"] == 20 and rows["nas"]["path"] == rel
    assert json.loads(rows["far"]["detail"]) == {"transferred_from": "nas"} and rows["far"]["step"] == 20
    assert (far / rel / "model.safetensors").read_bytes() == b"w" * 20
    assert (nas / rel / "model.safetensors").read_bytes() == b"w" * 20
    message, _ = last_event(realm, "vault_transfer")
    assert message == "checkpoint_20: nas -> far"
    found = realm.vault.locate("checkpoint_20")
    assert [loc.zone for loc in found.locations] == ["local", "nas", "far"]
    assert found.as_dict() == {"asset_id": "checkpoint_20", "found": True, "type": "checkpoint",
                               "best_location": found.locations[0].as_dict(),
                               "locations": [loc.as_dict() for loc in found.locations]}
    assert LocateResult("x", False).as_dict()["best_location"] is None
    local = found.locations[0]
    assert local.url == str(realm.paths.home / rel) and local.local and local.bytes == 20 + 2 + len(
        (realm.paths.checkpoints / "checkpoint-20-20260101-1200" / ".ledger.json").read_text())


def test_fetch_from_a_zone_records_the_local_copy(realm, tmp_path):
    nas = tmp_path / "nas"
    nas.mkdir()
    realm.vault.add_zone("nas", f"file://{nas}", confirmed=True)
    realm.vault.transfer("checkpoint_30", "nas")
    realm.vault.delete_checkpoint(30)  # the only local copy goes; the NAS keeps its own
    path = realm.vault.fetch("checkpoint_30")
    assert path == realm.paths.checkpoints / "checkpoint-30-20260101-1200"
    assert (path / "model.safetensors").read_bytes() == b"w" * 30
    row = latest_rows(realm, "checkpoint_30")[-1]
    assert (row["zone"], row["status"], row["step"]) == ("local", "present", 30)
    assert row["bytes"] == sum(f.stat().st_size for f in path.iterdir())
    assert json.loads(row["detail"]) == {"fetched_from": "nas"}
    assert last_event(realm, "vault_fetch")[0] == "Fetched checkpoint_30 from nas"
    assert not list((realm.paths.home / ".vault-tmp").iterdir()), "no staging copy is left"


def test_register_in_a_zone_and_at_home_records_bytes_and_detail(realm, tmp_path):
    nas = tmp_path / "nas"
    zone_tree(nas)
    realm.vault.add_zone("nas", f"file://{nas}", confirmed=True)
    got = realm.vault.register("models/far-model", zone="nas", detail={"by": "me"})
    assert got == {"asset_id": "model_far-model", "type": "model", "name": "far-model",
                   "location": {"zone": "nas", "path": "models/far-model",
                                "url": f"file://{nas}/models/far-model", "local": False,
                                "bytes": len('{"a": 1}')}}
    [row] = latest_rows(realm, "model_far-model")
    assert row["bytes"] == 8 and json.loads(row["detail"]) == {"by": "me"}
    assert row["path"] == "models/far-model" and row["step"] is None
    with pytest.raises(LookupError, match="nothing at 'models/gone' in zone 'nas'"):
        realm.vault.register("models/gone", zone="nas")
    home = realm.vault.register("checkpoints/checkpoint-40-20260101-1200")
    assert home["asset_id"] == "checkpoint_40" and home["type"] == "checkpoint"
    assert home["location"]["bytes"] == latest_rows(realm, "checkpoint_40")[-1]["bytes"] > 40
    assert latest_rows(realm, "checkpoint_40")[-1]["step"] == 40
    with pytest.raises(ValueError, match="unknown asset type 'weights'"):
        realm.vault.register("checkpoints/checkpoint-40-20260101-1200", type="weights")
    with pytest.raises(ValueError, match="registered path"):
        realm.vault.register(str(tmp_path / "elsewhere"))


def test_a_scan_of_an_fsspec_zone_finds_what_a_home_scan_would(realm, tmp_path):
    nas = tmp_path / "nas"
    zone_tree(nas)
    realm.vault.add_zone("nas", f"file://{nas}", confirmed=True)
    got = realm.vault.scan("nas")
    assert got == {"zone": "nas", "found": {"checkpoint": 2, "model": 1, "data": 2, "config": 1},
                   "gone": []}
    rows = {r["asset_id"]: r for r in realm.ledger.query(
        "SELECT asset_id, type, path, bytes, step FROM asset_locations WHERE zone = 'nas'")}
    assert rows["checkpoint_200"] == {"asset_id": "checkpoint_200", "type": "checkpoint",
                                      "path": "checkpoints/checkpoint-200-20260101-1200",
                                      "bytes": 202, "step": 200}
    assert rows["model_far-model"]["path"] == "models/far-model" and rows["model_far-model"]["step"] is None
    assert rows["data_set"]["path"] == "data/set.jsonl" and rows["data_set"]["bytes"] == 9
    assert rows["data_later"]["path"] == "queue/low/later.parquet" and rows["data_later"]["bytes"] == 4
    assert rows["config_realm"]["path"] == "realm.toml" and rows["config_realm"]["bytes"] == 8
    assert set(rows) == {"checkpoint_100", "checkpoint_200", "model_far-model", "data_set",
                         "data_later", "config_realm"}
    message, counts = last_event(realm, "vault_scan")
    assert message == "Scanned zone nas: 6 assets" and counts == got["found"]
    # Gone from the zone: the next scan marks it deleted there.
    import shutil
    shutil.rmtree(nas / "checkpoints" / "checkpoint-100-20260101-1200")
    assert realm.vault.scan("nas")["gone"] == ["checkpoint_100"]
    assert latest_rows(realm, "checkpoint_100")[-1]["status"] == "deleted"


def test_a_home_scan_finds_queue_files_and_configs(realm):
    (realm.paths.queue("high") / "now.jsonl").write_text("{}\n")
    (realm.paths.home / "configs").mkdir(exist_ok=True)
    (realm.paths.home / "configs" / "sweep.yaml").write_text("a: 1\n")
    got = realm.vault.scan()
    assert got["found"]["data"] == 1 and got["found"]["config"] >= 1
    rows = {r["asset_id"]: r for r in realm.ledger.query(
        "SELECT asset_id, path, bytes FROM asset_locations WHERE zone = 'local'")}
    assert rows["data_now"]["path"] == "queue/high/now.jsonl" and rows["data_now"]["bytes"] == 3
    assert rows["config_sweep"]["path"] == "configs/sweep.yaml"


def test_retention_over_a_zones_copies(realm, tmp_path):
    """A zone's retention plans over the copies catalogued there: its delete rows carry
    the zone's path and bytes, not the home's."""
    nas = tmp_path / "nas"
    nas.mkdir()
    realm.vault.add_zone("nas", f"file://{nas}", confirmed=True)
    for step in (10, 20, 30):
        realm.vault.transfer(f"checkpoint_{step}", "nas")
    policy = RetentionConfig(keep_best=0, keep_latest=1, keep_every=0)
    plan = realm.vault.retention_plan(policy, zone="nas")
    assert [k["step"] for k in plan["keep"]] == [30]
    assert plan["delete"] == [
        {"step": s, "name": f"checkpoint-{s}-20260101-1200",
         "path": f"checkpoints/checkpoint-{s}-20260101-1200",
         "bytes": latest_rows(realm, f"checkpoint_{s}")[-1]["bytes"]} for s in (10, 20)]
    assert plan["freed_bytes"] == sum(d["bytes"] for d in plan["delete"]) > 0
    # The best by val_loss: only the rows that carry one count.
    realm.ledger.append("checkpoints", [{**fake_row(realm, 20), "val_loss": 0.5}])
    by_val = realm.vault.retention_plan(RetentionConfig(keep_best=1, keep_latest=1, keep_every=0,
                                                        metric="val_loss"))
    assert {k["step"]: k["reasons"] for k in by_val["keep"]} == {
        20: ["best val_loss"], 40: ["in use (the hero's current weights)", "latest"]}

def test_destructive_calls_leave_their_event(realm):
    done = realm.vault.delete_checkpoint(20, by="tester")
    _, data = last_event(realm, "checkpoint_deleted")
    assert data == {"step": 20, "name": "checkpoint-20-20260101-1200", "by": "tester",
                    "bytes": done["freed_bytes"]}
    row = latest_rows(realm, "checkpoint_20")[-1]
    assert (row["status"], row["path"], json.loads(row["detail"])) == (
        "deleted", "checkpoints/checkpoint-20-20260101-1200", {"by": "tester"})
    plan = realm.vault.retention(dry_run=False, policy=RetentionConfig(keep_best=0, keep_latest=1,
                                                                       keep_every=0))
    assert [d["step"] for d in plan["delete"]] == [10, 30]
    message, data = last_event(realm, "retention")
    assert message == "Retention removed 2 checkpoint(s)" and data == {"steps": [10, 30]}


def test_protection_says_why(realm):
    """Each protected step names its reason: the Vault page and `realm vault` show it."""
    realm.ledger.event("eval_requested", "eval", json.dumps(
        {"step": 20, "checkpoint": "checkpoint-20-20260101-1200"}))
    (realm.paths.status / "training.json").write_text(json.dumps(
        {"last_checkpoint": str(realm.paths.checkpoints / "checkpoint-30-20260101-1200")}))
    assert realm.vault.protected_steps(retention=True) == {
        40: "in use (the hero's current weights)", 20: "awaiting its eval",
        30: "in use (the battle in progress)"}
    assert 20 not in realm.vault.protected_steps(), "a person may delete one awaiting its eval"
    room = realm.vault.make_room(need=1, budget=0, policy=RetentionConfig(keep_best=0, keep_latest=1,
                                                                          keep_every=0))
    assert room == {"fits": False, "used_bytes": room["used_bytes"], "need_bytes": 1,
                    "budget_bytes": 0, "deleted": [10]}
    assert room["used_bytes"] > 0
    message, data = last_event(realm, "retention")
    assert message == "The disk budget removed 1 checkpoint(s)" and data == {"steps": [10],
                                                                           "budget_bytes": 0}


def test_an_assets_history_and_the_names_the_vault_gives(realm, tmp_path):
    from realm_kernel.store.vault import VaultError, asset_id_for, guess_type
    realm.vault.register("checkpoints/checkpoint-20-20260101-1200")
    got = realm.vault.asset("checkpoint_20")
    assert [(h["zone"], h["path"], h["status"]) for h in got["history"]] == [
        ("local", "checkpoints/checkpoint-20-20260101-1200", "present")]
    assert got["checkpoint"]["step"] == 20
    assert asset_id_for("model", "qwen.v2") == "model_qwen.v2"
    assert asset_id_for("data", "a.b.jsonl") == "data_a.b"
    assert guess_type("models/weights.parquet") == "model" and guess_type("data/x.parquet") == "data"
    assert realm.vault.zones()[0] == {"zone_id": "local", "url": str(realm.paths.home), "kind": "local",
                                      "detail": "the realm home", "ts": None}
    with pytest.raises(VaultError, match="^no asset 'checkpoint_999' in the vault$"):
        realm.vault.fetch("checkpoint_999")
    with pytest.raises(VaultError, match="no checkpoint at step 0 in the ledger"):
        realm.vault.delete_checkpoint(0)  # step 0 is a step like any other here: not in the ledger
    out = realm.vault.export_checkpoint(20, "ck20")
    message, _ = last_event(realm, "checkpoint_exported")
    assert message == f"Checkpoint checkpoint-20-20260101-1200 exported to {out}"


def test_empty_files_and_every_queue_folder_are_found(realm, tmp_path):
    nas = tmp_path / "nas"
    (nas / "queue" / "recently_completed").mkdir(parents=True)
    (nas / "queue" / "recently_completed" / "done.jsonl").write_text("")
    realm.vault.add_zone("nas", f"file://{nas}", confirmed=True)
    assert realm.vault.scan("nas")["found"] == {"data": 1}
    [row] = realm.ledger.query("SELECT path, bytes FROM asset_locations WHERE zone = 'nas'")
    assert row == {"path": "queue/recently_completed/done.jsonl", "bytes": 0}
    realm.paths.config_file.write_text("[backup]\nkeep = 2\n")
    assert realm.vault.scan()["found"]["config"] == 1


def test_the_disk_budget_removes_what_retention_values_least_first(realm):
    """Unkept checkpoints go before every-Kth ones; the latest (in use) is never touched."""
    policy = RetentionConfig(keep_best=0, keep_latest=1, keep_every=2, keep_every_max=10)
    used = sum(f.stat().st_size for f in realm.paths.checkpoints.rglob("*") if f.is_file())
    assert realm.vault.make_room(need=1, budget=used, policy=policy)["deleted"] == [20]
    assert realm.vault.make_room(need=1, budget=0, policy=policy)["deleted"] == [10, 30]
    assert sorted(p.name for p in realm.paths.checkpoints.iterdir()) == ["checkpoint-40-20260101-1200"]
