import hashlib
import json

from realm_kernel.train.dio_mini import build_dio_mini


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_dio_mini_is_a_normal_qwen3_directory(dio_mini_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    model = AutoModelForCausalLM.from_pretrained(dio_mini_dir)
    tok = AutoTokenizer.from_pretrained(dio_mini_dir)
    assert type(model).__name__ == "Qwen3ForCausalLM"
    n = sum(p.numel() for p in model.parameters())
    assert 1_000_000 <= n <= 10_000_000
    assert json.loads((dio_mini_dir / "dio_mini.json").read_text())["parameters"] == n
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                   add_generation_prompt=True)
    assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    # Circled bits and digits are one token each: arithmetic is learned column by column.
    assert len(tok("①⓪①①", add_special_tokens=False)["input_ids"]) == 4
    assert tok.decode(tok("héllo ①⓪ 123 🙂")["input_ids"]) == "héllo ①⓪ 123 🙂"


def test_build_is_deterministic_per_seed(tmp_path, dio_mini_dir):
    again = build_dio_mini(tmp_path / "again", seed=0)
    for name in ("tokenizer.json", "model.safetensors", "config.json"):
        assert digest(again / name) == digest(dio_mini_dir / name), name
    other = build_dio_mini(tmp_path / "other", seed=1)
    assert digest(other / "model.safetensors") != digest(dio_mini_dir / "model.safetensors")


def test_existing_build_is_kept_unless_forced(tmp_path):
    d = build_dio_mini(tmp_path / "h", seed=0)
    mtime = (d / "model.safetensors").stat().st_mtime_ns
    assert build_dio_mini(d, seed=0) == d
    assert (d / "model.safetensors").stat().st_mtime_ns == mtime
