"""The checkpoint keeper's tidy-up after a save (train/keeper.py), alone on a real realm:
older checkpoints lose their resume state, and a tidy-up that fails is reported, never
raised into the battle. The full runs: tests/train/test_checkpoint_keeper.py (slow)."""

from __future__ import annotations

import logging

from realm_kernel.store.checkpoints import carries_resume_state
from realm_kernel.store.config import RetentionConfig
from realm_kernel.store.ledger import Ledger
from realm_kernel.store.paths import SIDECAR
from realm_kernel.train.keeper import CheckpointKeeper


def checkpoint(paths, name: str, optimizer_bytes: int):
    ckpt = paths.checkpoints / name
    ckpt.mkdir(parents=True)
    (ckpt / SIDECAR).write_text("{}")
    (ckpt / "model.safetensors").write_bytes(b"w" * 10)
    (ckpt / "optimizer.pt").write_bytes(b"o" * optimizer_bytes)
    return ckpt


def test_older_checkpoints_go_weights_only_and_the_freed_bytes_are_summed(realm_home, caplog):
    a = checkpoint(realm_home, "checkpoint-1", 100)
    b = checkpoint(realm_home, "checkpoint-2", 200)
    newest = checkpoint(realm_home, "checkpoint-3", 400)
    keeper = CheckpointKeeper(realm_home, Ledger(realm_home, "test"), RetentionConfig(auto=False))
    with caplog.at_level(logging.INFO, logger="realm.keeper"):
        keeper.saved(newest)
        keeper.close()
    assert not carries_resume_state(a) and not carries_resume_state(b) and carries_resume_state(newest)
    assert (a / "model.safetensors").exists()
    assert "resume state of older checkpoints removed (300 bytes)" in caplog.messages


def test_a_failed_tidy_up_is_reported_with_the_checkpoint_and_never_raised(realm_home, caplog):
    newest = checkpoint(realm_home, "checkpoint-3", 4)
    led = Ledger(realm_home, "test")
    reported: list[str] = []
    keeper = CheckpointKeeper(realm_home, led, RetentionConfig(auto=True), on_error=reported.append)
    broken = CheckpointKeeper(realm_home, led, RetentionConfig(auto=True))  # default: a warning

    def unreadable_vault():  # retention's first step, failing as a vanished disk would
        raise OSError("the vault is unreadable")
    keeper.vault = broken.vault = unreadable_vault
    with caplog.at_level(logging.WARNING, logger="realm.keeper"):
        keeper.saved(newest)
        broken.saved(newest)
        keeper.close()
        broken.close()  # the default reporter logs; nothing reaches the battle
    said = "checkpoint tidy-up after checkpoint-3 failed: OSError: the vault is unreadable"
    assert reported == [said]
    assert said in caplog.messages
