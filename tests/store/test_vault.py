"""VaultKeeper on a real ledger: zones (a plain folder and an fsspec file:// URL), scan,
locate, fetch, transfer, search, stats, champion and retention."""

import json

import pytest

from realm_kernel.api import Realm
from realm_kernel.store.config import RetentionConfig
from realm_kernel.store.paths import RealmPaths
from realm_kernel.store.vault import VaultError, ask_vault_first


def fake_checkpoint(paths, step, loss, stamp="20260101-1200"):
    name = f"checkpoint-{step}-{stamp}"
    d = paths.checkpoints / name
    d.mkdir(parents=True)
    (d / "config.json").write_text("{}")
    (d / "model.safetensors").write_bytes(b"w" * step)
    (d / ".ledger.json").write_text(json.dumps({"step": step, "name": name}))
    return {"step": step, "name": name, "path": str(d), "loss": loss}


@pytest.fixture
def realm(tmp_path):
    paths = RealmPaths.at(tmp_path / "home").ensure()
    r = Realm(paths.home)
    rows = [fake_checkpoint(paths, s, loss) for s, loss in
            ((10, 2.0), (20, 0.4), (30, 1.5), (40, 1.0), (50, 0.9), (60, 1.2), (70, 1.1))]
    r.ledger.append("checkpoints", rows)
    (paths.models / "base").mkdir()
    (paths.models / "base" / "config.json").write_text("{}")
    (paths.queue("normal") / "q.jsonl").write_text("{}\n")
    return r


def test_scan_locate_search_stats(realm):
    v = realm.vault
    found = v.scan()
    assert found["found"] == {"checkpoint": 7, "model": 1, "data": 1}
    loc = v.locate("checkpoint_20")
    assert loc.found and loc.best_location.local and loc.best_location.zone == "local"
    assert loc.best_location.path == "checkpoints/checkpoint-20-20260101-1200"
    assert not v.locate("checkpoint_999").found
    assert [a["asset_id"] for a in v.search("model")] == ["model_base"]
    assert [a["asset_id"] for a in v.search(query="q")] == ["data_q"]
    with pytest.raises(ValueError):
        v.search("weights")
    stats = v.stats()
    assert stats["assets"] == 9 and stats["checkpoints_in_ledger"] == 7
    # A checkpoint removed behind the vault's back is gone at the next scan.
    import shutil
    shutil.rmtree(realm.paths.checkpoints / "checkpoint-10-20260101-1200")
    assert not v.locate("checkpoint_10").found
    assert v.scan()["gone"] == ["checkpoint_10"]


def test_checkpoints_are_known_without_a_scan(realm):
    assert realm.vault.locate("checkpoint_30").found
    assert ask_vault_first("checkpoint_30", home=realm.paths.home).name.startswith("checkpoint-30-")
    assert str(ask_vault_first("checkpoint_1", fallback="/fallback", home=realm.paths.home)) == "/fallback"
    with pytest.raises(VaultError):
        ask_vault_first("checkpoint_1", home=realm.paths.home)


def test_zones_transfer_and_fetch_through_fsspec(realm, tmp_path):
    v = realm.vault
    nas = tmp_path / "nas"
    nas.mkdir()
    far = tmp_path / "far"
    far.mkdir()
    v.add_zone("nas", f"file://{nas}", confirmed=True)
    v.add_zone("far", str(far), confirmed=True)
    assert [z["zone_id"] for z in v.zones()] == ["local", "nas", "far"]
    for bad in (("local", "/x"), ("x", "relative/path"), ("x", "nosuchproto://a"), ("../x", "/x")):
        with pytest.raises(ValueError):
            v.add_zone(*bad, confirmed=True)
    loc = v.transfer("checkpoint_20", "nas")
    assert (nas / loc.path / "model.safetensors").read_bytes() == b"w" * 20
    assert v.transfer("checkpoint_20", "far", from_zone="nas").zone == "far"
    assert (far / loc.path / "config.json").exists()
    # Gone locally: the best location is now nas (zone order), and fetch brings it home.
    import shutil
    shutil.rmtree(realm.paths.home / loc.path)
    assert [x.zone for x in v.locate("checkpoint_20").locations] == ["nas", "far"]
    path = v.fetch("checkpoint_20")
    assert path == realm.paths.home / loc.path and (path / "model.safetensors").exists()
    assert v.locate("checkpoint_20").best_location.local
    [nas_assets] = v.zone("nas")["assets"]
    assert nas_assets["type"] == "checkpoint" and nas_assets["assets"] == 1 and nas_assets["bytes"] > 20
    (nas / "models" / "remote-only").mkdir(parents=True)
    (nas / "models" / "remote-only" / "config.json").write_text("{}")
    assert v.scan("nas")["found"] == {"checkpoint": 1, "model": 1}
    assert ask_vault_first("model_remote-only", home=realm.paths.home).is_dir()
    v.remove_zone("far")
    assert [x.zone for x in v.locate("checkpoint_20").locations] == ["local", "nas"]
    with pytest.raises(VaultError):
        v.zone("far")


def test_register_never_leaves_the_realm_home(realm, tmp_path):
    v = realm.vault
    outside = tmp_path / "outside.jsonl"
    outside.write_text("{}")
    for path in (str(outside), "../outside.jsonl", "queue/../../outside.jsonl", "~/x"):
        with pytest.raises(ValueError):
            v.register(path)
    got = v.register("queue/normal/q.jsonl", asset_id="data_mine")
    assert got["asset_id"] == "data_mine" and got["type"] == "data"
    assert v.register(str(realm.paths.models / "base"))["asset_id"] == "model_base"
    with pytest.raises(VaultError):
        v.register("models/nothing-here")
    with pytest.raises(ValueError):
        v.locate("../etc")


def test_champion_and_retention(realm):
    v = realm.vault
    assert realm.checkpoints.champion() is None
    with pytest.raises(VaultError):
        realm.checkpoints.promote(12345)
    realm.checkpoints.promote(10)
    assert realm.checkpoints.champion()["step"] == 10
    realm.checkpoints.promote("checkpoint-30-20260101-1200")
    assert realm.checkpoints.champion()["step"] == 30  # the latest promotion wins
    policy = RetentionConfig(keep_best=1, keep_latest=2, keep_every=3, metric="loss")
    plan = v.retention(dry_run=True, policy=policy)
    keep = {k["step"]: k["reasons"] for k in plan["keep"]}
    assert keep[20] == ["best loss"] and "champion" in keep[30]
    assert "latest" in keep[60] and "latest" in keep[70] and "in use" in keep[70][0]
    assert "every 3th" in keep[10] and "every 3th" in keep[40]
    assert sorted(d["step"] for d in plan["delete"]) == [50]
    assert (realm.paths.checkpoints / "checkpoint-50-20260101-1200").is_dir(), "dry run deletes nothing"
    done = v.retention(dry_run=False, policy=policy)
    assert [d["step"] for d in done["delete"]] == [50] and done["freed_bytes"] > 0
    assert not (realm.paths.checkpoints / "checkpoint-50-20260101-1200").exists()
    assert not v.locate("checkpoint_50").found
    assert realm.vault.retention(dry_run=True, policy=policy)["delete"] == []


def test_delete_checkpoint_refuses_champion_and_in_use(realm):
    from realm_kernel.store.vault import ProtectedAssetError
    realm.checkpoints.promote(30)
    with pytest.raises(ProtectedAssetError, match="step 30.*champion"):
        realm.checkpoints.delete(30)
    with pytest.raises(ProtectedAssetError, match="in use"):
        realm.checkpoints.delete(70)  # the newest checkpoint: the hero's current weights
    for bad in (-1, True, "40", 1.5):
        with pytest.raises(ValueError, match="non-negative integer"):
            realm.checkpoints.delete(bad)
    with pytest.raises(VaultError, match="no checkpoint at step 12345"):
        realm.checkpoints.delete(12345)
    done = realm.checkpoints.delete(40)
    assert done["step"] == 40 and done["freed_bytes"] > 0
    assert not (realm.paths.checkpoints / "checkpoint-40-20260101-1200").exists()
    assert (realm.paths.checkpoints / "checkpoint-30-20260101-1200").is_dir()
    with pytest.raises(VaultError, match="not on disk"):
        realm.checkpoints.delete(40)
    assert not realm.vault.locate("checkpoint_40").found
    kinds = [e["kind"] for e in realm.reports.events(20)]
    assert "checkpoint_deleted" in kinds


def test_export_checkpoint_is_a_clean_hf_dir(realm, tmp_path):
    """What is copied and where; a real checkpoint's export is loaded with transformers
    and gives the checkpoint's logits in tests/cli/test_cli.py (`realm vault export`)."""
    src = realm.paths.checkpoints / "checkpoint-20-20260101-1200"
    for junk in ("optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json",
                 "training_args.bin"):
        (src / junk).write_bytes(b"x")
    (src / "tokenizer.json").write_text("{}")
    out = realm.checkpoints.export(20)
    assert out == realm.paths.exports / "checkpoint-20-20260101-1200"
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors",
                                                     "tokenizer.json"]
    with pytest.raises(FileExistsError):
        realm.checkpoints.export(20)
    with pytest.raises(ValueError, match="export destination .* refused: it is outside"):
        realm.checkpoints.export(20, realm.paths.checkpoints / "copy")
    with pytest.raises(ValueError, match="export destination .* refused: it is outside"):
        realm.checkpoints.export(20, tmp_path / "elsewhere" / "dio")
    assert realm.checkpoints.export(20, "elsewhere/dio") == realm.paths.exports / "elsewhere" / "dio"
    assert not list((realm.paths.exports / "elsewhere").glob(".*partial"))


def test_a_step_saved_twice_leaves_no_untidied_folder(realm):
    """A second run that saved step 60 again under another folder (a fresh start, a resume
    in another minute): the view shows the newest save; the older folder is a spare copy
    that retention removes, never one it forgets on disk."""
    realm.ledger.append("checkpoints", [fake_checkpoint(realm.paths, 60, 1.3, stamp="20260102-0900")])
    policy = RetentionConfig(keep_best=0, keep_latest=2, keep_every=0)
    plan = realm.vault.retention(dry_run=True, policy=policy)
    newest = ["checkpoint-60-20260102-0900", "checkpoint-70-20260101-1200"]
    assert sorted(k["name"] for k in plan["keep"]) == newest
    assert sorted(d["name"] for d in plan["delete"])[-1] == "checkpoint-60-20260101-1200"
    realm.vault.retention(dry_run=False, policy=policy)
    assert sorted(p.name for p in realm.paths.checkpoints.iterdir()) == newest
