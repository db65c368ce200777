"""CPU threads for training (train/trainer.lend_threads, callbacks.ThreadShare): the
cores lent step by step while the Task Master is idle, and several ranks on one CPU
sharing its cores. The engine runs that reach them: tests/train/test_engine_features.py."""

from __future__ import annotations

import os

import pytest
import torch

from realm_kernel.store.config import TrainingConfig
from realm_kernel.train.callbacks import ThreadShare
from realm_kernel.train.trainer import lend_threads


@pytest.fixture
def threads_kept():
    """torch's thread count is process-wide: put it back for the tests after."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_the_share_of_steps_on_all_cores_counts_every_step(threads_kept):
    lend = iter([True, False, False, True, RuntimeError("unreadable status")])

    def lendable() -> bool:
        got = next(lend)
        if isinstance(got, Exception):
            raise got
        return got

    share = ThreadShare(1, 2, lendable)
    assert share.full_share is None, "no step yet"
    seen = []
    for _ in range(5):
        share.on_step_begin(None, None, None)
        seen.append(torch.get_num_threads())
    assert seen == [2, 1, 1, 2, 1], "all cores while lendable, the share otherwise"
    assert (share.steps, share.steps_full) == (5, 2) and share.full_share == pytest.approx(0.4)
    share.on_train_end(None, None, None)
    assert torch.get_num_threads() == 1


def test_ranks_on_one_cpu_split_its_cores_and_lend_nothing(realm_home, monkeypatch, threads_kept):
    cores = os.cpu_count() or 1
    monkeypatch.setenv("WORLD_SIZE", str(cores))  # one core each
    assert lend_threads(TrainingConfig(threads=0), cuda=False, paths=realm_home) is None
    assert torch.get_num_threads() == 1
    monkeypatch.setenv("WORLD_SIZE", "1")
    torch.set_num_threads(1)
    lent = lend_threads(TrainingConfig(threads=0), cuda=False, paths=realm_home)
    if cores > 1:  # half the cores, the rest lent while the Task Master is idle
        assert isinstance(lent, ThreadShare) and (lent.share, lent.full) == (max(1, cores // 2), cores)
    assert torch.get_num_threads() == max(1, cores // 2)
