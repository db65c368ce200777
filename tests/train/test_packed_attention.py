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


def test_a_padded_batch_goes_to_transformers_sdpa_unchanged(rows_and_models):
    """Generation and evaluation pad on the left: sdpa_segments hands a padding mask to
    transformers' own sdpa path, so its logits are sdpa's (a pad is never attended)."""
    tok, rows, models = rows_and_models
    examples = sorted((e["input_ids"] for row in rows for e in row), key=len)
    ids = [examples[0], examples[-1]]
    width = max(len(i) for i in ids)
    input_ids = torch.tensor([[tok.pad_token_id] * (width - len(i)) + i for i in ids])
    mask = torch.tensor([[0] * (width - len(i)) + [1] * len(i) for i in ids])
    assert (mask == 0).any(), "examples of different lengths: one is padded"
    with torch.no_grad():
        got = models["sdpa_segments"](input_ids=input_ids, attention_mask=mask).logits
        want = models["sdpa"](input_ids=input_ids, attention_mask=mask).logits
    real = mask.bool()
    assert torch.allclose(got[real], want[real], atol=TOL)


class Attention(torch.nn.Module):
    def __init__(self, causal: bool) -> None:
        super().__init__()
        self.is_causal, self.num_key_value_groups = causal, 1


def qkv(length: int = 6) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    return [torch.randn(1, 2, length, 8, generator=gen) for _ in range(3)]


def test_a_module_that_is_not_causal_attends_both_ways():
    """An attention module marked not causal (an encoder's) goes to sdpa without the
    causal triangle, even with packed position ids."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    from realm_kernel.train.segment_attention import segment_attention
    q, k, v = qkv()
    pos = torch.tensor([[0, 1, 2, 0, 1, 2]])
    got, _ = segment_attention(Attention(causal=False), q, k, v, None, position_ids=pos)
    want, _ = sdpa_attention_forward(Attention(causal=False), q, k, v, None, position_ids=pos)
    assert torch.equal(got, want)
    causal, _ = segment_attention(Attention(causal=True), q, k, v, None, position_ids=pos)
    assert not torch.allclose(got, causal), "the two directions differ on these inputs"


def test_the_fallback_path_keeps_the_callers_dropout():
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    from realm_kernel.train.segment_attention import segment_attention
    q, k, v = qkv()
    mask = torch.ones(1, 1, 6, 6, dtype=torch.bool).tril()
    torch.manual_seed(0)
    got, _ = segment_attention(Attention(causal=True), q, k, v, mask, dropout=0.5)
    torch.manual_seed(0)
    want, _ = sdpa_attention_forward(Attention(causal=True), q, k, v, mask, dropout=0.5)
    undropped, _ = sdpa_attention_forward(Attention(causal=True), q, k, v, mask)
    assert torch.equal(got, want) and not torch.allclose(got, undropped)
