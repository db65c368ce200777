"""Every packed-attention path of the CPU keeps examples apart, token by token
(tests/packing_check.py: each token's log-probabilities in the packed row against the
example run alone), and the same check fails on a deliberately leaking path, so it can
catch the bug it is for. The GPU's flash-attention path: tests/train/test_gpu.py."""

from __future__ import annotations

import pytest
import torch

from realm_kernel.train.data import build_datasets
from realm_kernel.train.mixed import mixed_examples
from realm_kernel.train.packing import PackedCollator, PackedDataset

from ..packing_check import LEAKY, assert_examples_kept_apart, register_leaky

# float32 on a CPU: the packed row and the example alone agree to rounding (measured
# ~1e-6); a leak moves some token's log-probability by ~0.9 on dio-mini.
TOL = 1e-4


@pytest.fixture(scope="module")
def rows_and_models(dio_mini_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from realm_kernel.train.segment_attention import register
    register()
    register_leaky()
    tok = AutoTokenizer.from_pretrained(dio_mini_dir)
    train, _, _ = build_datasets(tok, mixed_examples(16, seed=2), 256, 0.0, 0, 0)
    # The two rows holding the most examples (each example is also run alone: seconds).
    rows = sorted(PackedDataset(train.rows, capacity=512).rows, key=len)[-2:]
    assert min(len(r) for r in rows) >= 3, "rows of several examples"
    models = {impl: AutoModelForCausalLM.from_pretrained(dio_mini_dir, attn_implementation=impl).eval()
              for impl in ("sdpa", "eager", "sdpa_segments", LEAKY)}
    return tok, rows, models


@pytest.mark.parametrize("impl", ["sdpa", "eager", "sdpa_segments"])
def test_each_packed_example_equals_the_example_alone(rows_and_models, impl):
    tok, rows, models = rows_and_models
    collate = PackedCollator(tok.pad_token_id, impl)
    worst = max(assert_examples_kept_apart(models[impl], collate([row]), row, TOL, impl) for row in rows)
    assert worst < TOL


def test_the_check_fails_on_a_leaking_packed_path(rows_and_models):
    tok, rows, models = rows_and_models
    row = max(rows, key=len)
    # Our segment path's batch on an attention that ignores where examples start.
    with pytest.raises(AssertionError, match="packed examples see each other: example 1 of"):
        assert_examples_kept_apart(models[LEAKY], PackedCollator(tok.pad_token_id, "sdpa_segments")([row]),
                                   row, TOL, LEAKY)
    # The masked path's model given no mask (flash-attention's batch: position ids only).
    unmasked = PackedCollator(tok.pad_token_id, "flash_attention_2")([row])
    with pytest.raises(AssertionError, match="packed examples see each other"):
        assert_examples_kept_apart(models["sdpa"], unmasked, row, TOL, "sdpa without its mask")
    # A mask that is causal over the whole row instead of block-causal.
    batch = PackedCollator(tok.pad_token_id, "sdpa")([row])
    batch["attention_mask"] = torch.ones_like(batch["attention_mask"]).tril()
    with pytest.raises(AssertionError, match="packed examples see each other"):
        assert_examples_kept_apart(models["sdpa"], batch, row, TOL, "a causal mask")
