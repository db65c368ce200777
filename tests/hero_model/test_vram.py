import json

import pytest
import torch

from realm_kernel.hero_model.vram import count_params, estimate, estimate_from_path
from realm_kernel.train.presets import PRESETS, qwen3_config


def meta_count(config) -> int:
    """Parameters of the real transformers model built on the meta device (no memory)."""
    from transformers import Qwen3ForCausalLM
    with torch.device("meta"):
        model = Qwen3ForCausalLM(config)
    return sum(p.numel() for p in model.parameters())  # a tied head is counted once


@pytest.mark.parametrize("name", ["qwen3-0.6b", "qwen3-4b", "qwen3-20m"])
def test_parameter_count_is_exact(name):
    assert count_params(PRESETS[name]) == meta_count(qwen3_config(name))


@pytest.mark.parametrize("change", [{"tie_word_embeddings": False}, {"tie_word_embeddings": True},
                                    {"attention_bias": True}, {"num_key_value_heads": 3},
                                    {"head_dim": 96}])
def test_parameter_count_follows_the_architecture(change):
    """Every field count_params reads, changed one at a time, against transformers."""
    cfg = {**PRESETS["qwen3-20m"], **change}
    from transformers import Qwen3Config
    assert count_params(cfg) == meta_count(Qwen3Config(**cfg))


def test_qwen3_4b_budget_terms_are_consistent():
    """What holds whatever the calibration constants: the terms sum to the total, bf16
    weights and gradients are two bytes a parameter, a paged optimizer moves its state to
    the host without changing its size."""
    kw = dict(seq_len=512, batch_size=1, gradient_checkpointing=True)
    e = estimate(PRESETS["qwen3-4b"], optimizer="paged_adamw_8bit", **kw)
    assert e.params == meta_count(qwen3_config("qwen3-4b"))
    assert e.weights == 2 * e.params and e.gradients == e.weights
    assert e.total == pytest.approx(e.weights + e.gradients + e.optimizer + e.activations
                                    + e.logits + e.overhead)
    on_gpu = estimate(PRESETS["qwen3-4b"], optimizer="adamw_8bit", **kw)
    assert e.optimizer == 0 and e.optimizer_host == on_gpu.optimizer > 0
    assert on_gpu.total == pytest.approx(e.total + on_gpu.optimizer)
    kept = estimate(PRESETS["qwen3-4b"], optimizer="paged_adamw_8bit", offload_optimizer=False, **kw)
    assert kept.optimizer == e.optimizer_host and kept.optimizer_host == 0


def test_qwen3_4b_reference_figure():
    """A reference to reproduce, not evidence: the constants were calibrated so that this
    budget (Qwen3-4B, bf16, seq 512, paged 8-bit AdamW, checkpointing) comes out at the
    18.6 GB peak the project started from. Whether the estimate matches a real card is
    measured by bench/gpu_train.py (`vram_estimate_error`) on a GPU machine."""
    e = estimate(PRESETS["qwen3-4b"], seq_len=512, batch_size=1, optimizer="paged_adamw_8bit",
                 gradient_checkpointing=True)
    assert e.total == pytest.approx(18.6e9, rel=0.10)


def test_terms_move_the_right_way():
    cfg = PRESETS["qwen3-0.6b"]
    base = estimate(cfg, seq_len=2048)
    assert estimate(cfg, seq_len=2048, gradient_checkpointing=True).activations < base.activations / 5
    assert estimate(cfg, seq_len=2048, liger=True).logits < base.logits / 10
    assert estimate(cfg, seq_len=4096).activations == pytest.approx(2 * base.activations)
    # Activations and logits follow tokens: twice the batch == twice the sequence.
    doubled = estimate(cfg, seq_len=1024, batch_size=2)
    half = estimate(cfg, seq_len=1024)
    assert doubled.activations == pytest.approx(2 * half.activations)
    assert doubled.logits == pytest.approx(2 * half.logits) and doubled.weights == half.weights
    assert estimate(cfg, seq_len=2048, optimizer="adamw_8bit").optimizer < base.optimizer / 1.5
    assert estimate(cfg, seq_len=2048, dtype="float32").weights == 2 * base.weights
    assert estimate(cfg, seq_len=4096).total > base.total > estimate(cfg, seq_len=1024).total


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="optimizer"):
        estimate(PRESETS["qwen3-0.6b"], seq_len=8, optimizer="sgd-ish")
    with pytest.raises(ValueError, match="dtype"):
        estimate(PRESETS["qwen3-0.6b"], seq_len=8, dtype="int3")
    with pytest.raises(ValueError, match="seq_len"):
        estimate(PRESETS["qwen3-0.6b"], seq_len=0)


def test_from_a_model_directory(dio_mini_dir):
    e = estimate_from_path(str(dio_mini_dir), seq_len=256, dtype="float32")
    assert e.params == json.loads((dio_mini_dir / "dio_mini.json").read_text())["parameters"]
    with pytest.raises(FileNotFoundError):
        estimate_from_path(str(dio_mini_dir / "nope"), seq_len=8)


def test_realm_settings_estimate_follows_realm_toml(realm_home, dio_mini_dir):
    from realm_kernel.api import Realm
    realm = Realm(realm_home.home)
    base = realm.training.vram_estimate()
    assert base["params"] == count_params(json.loads((dio_mini_dir / "config.json").read_text()))
    with_ckpt = realm.training.vram_estimate(gradient_checkpointing=True)
    assert with_ckpt["activations"] < base["activations"]
    realm_home.config_file.write_text(realm_home.config_file.read_text().replace(
        "max_length = 128", "max_length = 256"))
    assert realm.training.vram_estimate()["activations"] == pytest.approx(2 * base["activations"])
