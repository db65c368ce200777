"""The disk budget (VaultKeeper.make_room) frees space by deleting checkpoints, but never
the champion, the hero's current weights or the checkpoint the battle in progress uses:
with a budget nothing fits in, it deletes everything else and says the bytes still do
not fit."""

from __future__ import annotations

import json

from realm_kernel.api import Realm
from realm_kernel.store.checkpoints import CheckpointLedger
from realm_kernel.store.config import RetentionConfig
from realm_kernel.store.paths import RealmPaths

from .test_vault import fake_checkpoint

STEPS = (10, 20, 30, 40, 50, 60, 70)


def test_a_budget_nothing_fits_in_keeps_the_champion_and_the_checkpoints_in_use(tmp_path):
    paths = RealmPaths.at(tmp_path / "home").ensure()
    realm = Realm(paths.home)
    rows = [fake_checkpoint(paths, s, 1.0 + s / 100) for s in STEPS]
    realm.ledger.append("checkpoints", rows)
    realm.checkpoints.promote(30)
    # The battle in progress last saved step 50 (its status file names it).
    (paths.status / "training.json").write_text(json.dumps({"last_checkpoint": rows[4]["path"]}))
    protected = realm.vault.protected_steps(retention=True)
    assert {30: "champion", 70: "in use (the hero's current weights)",
            50: "in use (the battle in progress)"}.items() <= protected.items()

    policy = RetentionConfig(keep_best=0, keep_latest=1, keep_every=0, metric="loss")
    room = realm.vault.make_room(need=1, budget=0, policy=policy)

    assert not room["fits"] and room["budget_bytes"] == 0
    kept = {30, 50, 70}
    assert sorted(room["deleted"]) == sorted(set(STEPS) - kept)
    on_disk = {r["step"] for r in rows if (paths.checkpoints / r["name"]).is_dir()}
    assert on_disk == kept
    deleted = {r.step for r in CheckpointLedger(realm.ledger).list()
               if not (paths.checkpoints / r.name).is_dir()}
    assert deleted == set(STEPS) - kept
    assert realm.checkpoints.champion()["step"] == 30


def test_a_budget_with_room_deletes_nothing(tmp_path):
    paths = RealmPaths.at(tmp_path / "home").ensure()
    realm = Realm(paths.home)
    realm.ledger.append("checkpoints", [fake_checkpoint(paths, s, 1.0) for s in STEPS])
    room = realm.vault.make_room(need=1, budget=10 ** 9)
    assert room["fits"] and room["deleted"] == []
    assert all((paths.checkpoints / f"checkpoint-{s}-20260101-1200").is_dir() for s in STEPS)
