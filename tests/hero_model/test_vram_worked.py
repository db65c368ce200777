"""The VRAM calculator (hero_model/vram.py) term by term on a decoder small enough to work
by hand, checked against the real transformers and peft models where they exist: the
parameter count, each projection's shape, the LoRA adapter size, every term of `estimate`
for full, LoRA and QLoRA, and `fit`'s ladder (which lengths and batches it tries, its
boundary, its scale) and the texts it prints."""

from __future__ import annotations

import pytest
import torch

from realm_kernel.hero_model.vram import (
    CUDA_CONTEXT_BYTES,
    GB,
    GIB,
    NF4_BYTES,
    PROJECTIONS,
    Fit,
    VramEstimate,
    count_params,
    estimate,
    estimate_from_path,
    fit,
    lora_params,
    projection_shapes,
)

# h 8, intermediate 16, 2 layers, 2 query heads and 1 KV head of 4: q = 8, k = v = 4 wide.
TINY = {"hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
        "num_key_value_heads": 1, "head_dim": 4, "vocab_size": 32, "tie_word_embeddings": False,
        "model_type": "qwen3"}
# Worked by hand: attention 8*8 + 2*8*4 + 8*8 = 192, q/k norms 2*4 = 8, MLP 3*8*16 = 384,
# two RMSNorms 2*8 = 16 -> 600 a layer; embeddings 32*8 = 256, an untied head 256, the
# final norm 8: 256 + 2*600 + 8 + 256.
TINY_PARAMS = 1720
# (in + out) per projection: q 16, k 12, v 12, o 16, gate 24, up 24, down 24 = 128 a layer.
TINY_LORA_PER_RANK = 2 * 128
# in * out per projection: 64 + 32 + 32 + 64 + 128 + 128 + 128 = 576 a layer.
TINY_LINEAR = 2 * 576


def real_model(config: dict, cls: str = "Qwen3"):
    """The transformers model of this config on the meta device (no memory)."""
    import transformers
    cfg = getattr(transformers, f"{cls}Config")(**config)
    with torch.device("meta"):
        return getattr(transformers, f"{cls}ForCausalLM")(cfg), cfg


def test_parameter_count_worked_by_hand_is_the_real_models():
    model, cfg = real_model(TINY)
    assert count_params(TINY) == TINY_PARAMS == sum(p.numel() for p in model.parameters())
    # A transformers config object is read by attribute, the same count.
    assert count_params(cfg) == TINY_PARAMS
    assert type(count_params(cfg)) is int


def test_parameter_count_without_head_dim_or_kv_heads_and_for_llama():
    # head_dim from hidden_size // heads, and as many KV heads as query heads.
    # (transformers' Qwen3Config would default head_dim to 128: it gets both spelt out.)
    mha = {k: v for k, v in TINY.items() if k not in ("head_dim", "num_key_value_heads")}
    model, _ = real_model({**mha, "head_dim": 4, "num_key_value_heads": 2})
    # k and v now 8 wide: attention 64 + 2*64 + 64 = 256 a layer, 64 more than TINY's.
    assert count_params(mha) == TINY_PARAMS + 2 * 64 == sum(p.numel() for p in model.parameters())
    assert type(count_params(mha)) is int  # an integer count, not a float from h / heads
    # Llama has no q/k norms: 2 * head_dim a layer fewer than Qwen3.
    llama = {**TINY, "model_type": "llama"}
    model, cfg = real_model(llama, "Llama")
    assert count_params(llama) == count_params(cfg) == sum(p.numel() for p in model.parameters())
    assert count_params(llama) == TINY_PARAMS - 2 * 2 * 4


def test_projection_shapes_are_the_real_linear_layers():
    model, cfg = real_model(TINY)
    layer = model.model.layers[0]
    real = {name: (mod.in_features, mod.out_features) for name, mod in layer.named_modules()
            if isinstance(mod, torch.nn.Linear)}
    shapes = projection_shapes(TINY)
    assert {n.rsplit(".", 1)[-1]: s for n, s in real.items()} == shapes == projection_shapes(cfg)
    assert shapes == {"q_proj": (8, 8), "k_proj": (8, 4), "v_proj": (8, 4), "o_proj": (8, 8),
                      "gate_proj": (8, 16), "up_proj": (8, 16), "down_proj": (16, 8)}


@pytest.mark.parametrize("targets", [list(PROJECTIONS), ["all-linear"], ["q_proj", "v_proj"]])
def test_lora_params_are_peft_trainable_parameters(targets):
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen3Config, Qwen3ForCausalLM
    torch.manual_seed(0)
    model = Qwen3ForCausalLM(Qwen3Config(**TINY))
    peft_targets = "all-linear" if targets == ["all-linear"] else targets
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=peft_targets))
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    assert lora_params(TINY, 4, targets) == trainable
    # By hand: rank x (in + out) per targeted projection per layer.
    expected = {"q_proj": 16, "v_proj": 12}
    per_rank = TINY_LORA_PER_RANK if len(targets) != 2 else 2 * sum(expected.values())
    assert lora_params(TINY, 4, targets) == 4 * per_rank
    # A name that is no decoder projection adds nothing.
    if targets != ["all-linear"]:
        assert lora_params(TINY, 4, [*targets, "lm_head"]) == lora_params(TINY, 4, targets)


def test_full_fine_tuning_terms_worked_by_hand():
    e = estimate(TINY, seq_len=3, batch_size=2, optimizer="adamw")
    tokens, b = 6, 2
    assert e.params == TINY_PARAMS
    assert e.weights == e.gradients == TINY_PARAMS * b
    assert e.optimizer == TINY_PARAMS * 2 * b and e.optimizer_host == 0
    # per token and layer: 6h + 2(q + 2k) + 4 * intermediate = 48 + 32 + 64 = 144
    assert e.activations == tokens * b * 2 * 144
    assert e.logits == tokens * 32 * (b + 4 + 4)  # bf16 logits, their fp32 upcast and its grad
    assert e.overhead == CUDA_CONTEXT_BYTES + 0.05 * (e.weights + e.gradients)
    assert e.total == e.weights + e.gradients + e.optimizer + e.activations + e.logits + e.overhead
    ck = estimate(TINY, seq_len=3, batch_size=2, gradient_checkpointing=True)
    assert ck.activations == tokens * b * (2 * 8 + 144)  # layer inputs + one layer recomputed
    liger = estimate(TINY, seq_len=3, batch_size=2, liger=True)
    assert liger.logits == tokens * 8 * 4 * 2  # chunked from the hidden states
    f32 = estimate(TINY, seq_len=3, batch_size=2, dtype="float32")
    assert f32.weights == TINY_PARAMS * 4 and f32.logits == tokens * 32 * 12


@pytest.mark.parametrize("optimizer, per_param", [
    ("adamw", 4), ("muon", 3), ("adamw_8bit", 2.06), ("paged_adamw_8bit", 2.06)])
def test_optimizer_state_per_trained_parameter(optimizer, per_param):
    e = estimate(TINY, seq_len=4, optimizer=optimizer)
    state = e.optimizer + e.optimizer_host
    assert state == pytest.approx(TINY_PARAMS * per_param)
    assert (e.optimizer_host > 0) == optimizer.startswith("paged_")


def test_lora_and_qlora_terms_worked_by_hand():
    trained = 16 * TINY_LORA_PER_RANK  # the default rank is 16
    lora = estimate(TINY, seq_len=4, method="lora")
    assert lora.gradients == trained * 2 and lora.optimizer == trained * 4
    assert lora.weights == TINY_PARAMS * 2 + trained * 2  # the frozen base in bf16 + adapters
    qlora = estimate(TINY, seq_len=4, method="qlora", lora_rank=8, lora_targets=["q_proj"])
    trained8 = 8 * 2 * 16
    assert qlora.gradients == trained8 * 2
    assert qlora.weights == pytest.approx((TINY_PARAMS - TINY_LINEAR) * 2 + TINY_LINEAR * NF4_BYTES
                                          + trained8 * 2)
    # Activations and logits do not depend on the method.
    full = estimate(TINY, seq_len=4)
    assert (lora.activations, lora.logits) == (qlora.activations, qlora.logits) \
        == (full.activations, full.logits)


def test_kv_heads_shape_the_activations():
    mha = {k: v for k, v in TINY.items() if k != "num_key_value_heads"}  # KV heads = query heads
    a = estimate(mha, seq_len=1).activations
    assert a == 1 * 2 * 2 * (48 + 2 * (8 + 2 * 8) + 64)
    assert estimate(TINY, seq_len=1).activations == 1 * 2 * 2 * 144


def test_bad_inputs_are_named_whole():
    with pytest.raises(ValueError, match=r"^seq_len and batch_size must be >= 1$"):
        estimate(TINY, seq_len=4, batch_size=0)
    with pytest.raises(ValueError, match=r"method must be full, lora or qlora, got 'dora'"):
        estimate(TINY, seq_len=4, method="dora")


def test_estimate_from_a_folder_without_config_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"no config.json in {tmp_path}"):
        estimate_from_path(str(tmp_path), seq_len=8)


def test_table_prints_each_term_in_gb():
    e = VramEstimate(params=1_500_000_000, weights=3e9, gradients=3e9, optimizer=0.0,
                     optimizer_host=6.18e9, activations=1.25e9, logits=0.5e9, overhead=1.05e9,
                     total=8.8e9)
    assert e.table() == "\n".join([
        "parameters         1.500 B",
        "weights             3.00 GB",
        "gradients           3.00 GB",
        "optimizer           0.00 GB",
        "optimizer_host      6.18 GB",
        "activations         1.25 GB",
        "logits              0.50 GB",
        "overhead            1.05 GB",
        "total               8.80 GB"])


def test_describe_says_the_choice_and_the_verdict():
    e = VramEstimate(1, 0, 0, 0, 0, 0, 0, 0, total=3.5 * GIB)
    on = Fit(2, 8, True, 1024, e, budget=4.25 * GIB, fits=True)
    assert on.describe() == ("batch 2 x accumulation 8, max_length 1024, gradient checkpointing on: "
                             "estimate 3.5 GiB fits the budget of 4.2 GiB")
    off = Fit(1, 16, False, 512, e, budget=2 * GIB, fits=False)
    assert off.describe() == ("batch 1 x accumulation 16, max_length 512, gradient checkpointing off: "
                              "estimate 3.5 GiB does NOT fit the budget of 2.0 GiB")


def total(seq: int, batch: int, checkpointing: bool) -> float:
    return estimate(TINY, seq_len=seq, batch_size=batch, gradient_checkpointing=checkpointing).total


def test_fit_at_the_budget_exactly_fits():
    card = total(64, 2, False)  # headroom 1: the budget is this estimate to the byte
    f = fit(TINY, card_bytes=card, headroom=1.0, effective_batch=4, max_length=64)
    assert (f.batch_size, f.gradient_accumulation_steps, f.gradient_checkpointing, f.fits) == \
        (2, 2, False, True)
    assert f.budget == card and f.estimate.total == card


def test_fit_halves_max_length_down_to_min_length_as_integers():
    # A budget that holds 16 tokens with checkpointing and nothing longer: the ladder tries
    # 256 without checkpointing, then 256, 128, 64, 32, 16 with it.
    card = total(16, 1, True)
    f = fit(TINY, card_bytes=card, headroom=1.0, effective_batch=1, max_length=256, min_length=1)
    assert (f.fits, f.gradient_checkpointing, f.max_length) == (True, True, 16)
    assert type(f.max_length) is int
    # min_length stops the halving: nothing fits, the last try is at min_length.
    g = fit(TINY, card_bytes=card, headroom=1.0, effective_batch=1, max_length=256, min_length=32)
    assert not g.fits and (g.max_length, g.batch_size, g.gradient_checkpointing) == (32, 1, True)
    assert type(g.max_length) is int


def test_fit_accepts_the_smallest_inputs():
    f = fit(TINY, card_bytes=80 * GIB, effective_batch=1, max_length=1, min_length=1)
    assert (f.batch_size, f.gradient_accumulation_steps, f.max_length, f.fits) == (1, 1, 1, True)
    with pytest.raises(ValueError, match="effective_batch and max_length must be >= 1"):
        fit(TINY, card_bytes=80 * GIB, effective_batch=0, max_length=8)
    with pytest.raises(ValueError, match="effective_batch and max_length must be >= 1"):
        fit(TINY, card_bytes=80 * GIB, effective_batch=4, max_length=0)


def test_fit_batches_are_powers_of_two_dividing_the_effective_batch():
    # 12 examples a step: 4, 2 or 1 per device (never 8, which does not divide 12).
    card = total(16, 4, False)
    f = fit(TINY, card_bytes=card, headroom=1.0, effective_batch=12, max_length=16)
    assert (f.batch_size, f.gradient_accumulation_steps) == (4, 3)
    # A given batch is the only one tried.
    g = fit(TINY, card_bytes=card, headroom=1.0, effective_batch=12, max_length=16, batch_size=3)
    assert (g.batch_size, g.gradient_accumulation_steps, g.fits) == (3, 4, True)


def test_fit_scale_and_checkpointing_choice():
    card = total(16, 4, False)
    # Measured peaks a little over the estimate: batch 4 (exactly the card) no longer fits,
    # batch 2 still does.
    scale = (1 + card / total(16, 2, False)) / 2
    f = fit(TINY, card_bytes=card, headroom=1.0, effective_batch=4, max_length=16, scale=scale)
    assert (f.batch_size, f.gradient_accumulation_steps, f.gradient_checkpointing) == (2, 2, False)
    assert fit(TINY, card_bytes=card, headroom=1.0, effective_batch=4, max_length=16).batch_size == 4
    # checkpointing=True tries only with it; False never turns it on, even when nothing fits.
    on = fit(TINY, card_bytes=card, headroom=1.0, effective_batch=4, max_length=16, checkpointing=True)
    assert on.gradient_checkpointing and on.batch_size == 4
    off = fit(TINY, card_bytes=CUDA_CONTEXT_BYTES, effective_batch=4, max_length=16, checkpointing=False)
    assert (off.fits, off.gradient_checkpointing, off.max_length, off.batch_size) == (False, False, 16, 1)
    assert off.budget == CUDA_CONTEXT_BYTES * 0.85 and GB == 1e9
