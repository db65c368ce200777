import json

import pytest
import torch

from realm_kernel.train.presets import PRESETS, qwen3_config
from realm_kernel.train.vram import count_params, estimate, estimate_from_path


@pytest.mark.parametrize("name", ["qwen3-0.6b", "qwen3-4b", "qwen3-20m"])
def test_parameter_count_is_exact(name):
    from transformers import Qwen3ForCausalLM
    with torch.device("meta"):
        model = Qwen3ForCausalLM(qwen3_config(name))
    assert count_params(PRESETS[name]) == sum(p.numel() for p in model.parameters())


def test_reproduces_the_qwen3_4b_reference_budget():
    """bf16 weights ~8 GB, grads ~8 GB, paged 8-bit Adam offloaded, peak 18.6 GB."""
    e = estimate(PRESETS["qwen3-4b"], seq_len=512, batch_size=1, optimizer="paged_adamw_8bit",
                 gradient_checkpointing=True)
    assert e.params == 4_022_468_096
    assert e.weights == pytest.approx(8.04e9, rel=0.01) and e.gradients == e.weights
    assert e.optimizer == 0 and e.optimizer_host == pytest.approx(2.06 * e.params)
    assert e.total == pytest.approx(18.6e9, rel=0.10)


def test_terms_move_the_right_way():
    cfg = PRESETS["qwen3-0.6b"]
    base = estimate(cfg, seq_len=2048)
    assert estimate(cfg, seq_len=2048, gradient_checkpointing=True).activations < base.activations / 5
    assert estimate(cfg, seq_len=2048, liger=True).logits < base.logits / 10
    assert estimate(cfg, seq_len=4096).activations == pytest.approx(2 * base.activations)
    assert estimate(cfg, seq_len=2048, optimizer="adamw_8bit").optimizer < base.optimizer / 1.5
    assert estimate(cfg, seq_len=2048, dtype="float32").weights == 2 * base.weights


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
    base = realm.vram_estimate()
    assert base["params"] == count_params(json.loads((dio_mini_dir / "config.json").read_text()))
    with_ckpt = realm.vram_estimate(gradient_checkpointing=True)
    assert with_ckpt["activations"] < base["activations"]
    realm_home.config_file.write_text(realm_home.config_file.read_text().replace(
        "max_length = 128", "max_length = 256"))
    assert realm.vram_estimate()["activations"] == pytest.approx(2 * base["activations"])
