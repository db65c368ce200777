"""dio-mini: the embedded CPU demo hero, a tiny Qwen3ForCausalLM built from a seed.

The tokenizer is a byte-level BPE trained locally with `tokenizers` on generated skill
text (so any UTF-8 text still encodes), with a Qwen-style chat template and Qwen's
special tokens. The result is an ordinary HF directory, loaded by the same code path as
a real Qwen3 checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
VOCAB_SIZE = 1024
ARCH = {
    "hidden_size": 128, "intermediate_size": 512, "num_hidden_layers": 6,
    "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 32,
    "max_position_embeddings": 1024, "tie_word_embeddings": True,
}

_GENERIC_TEXT = [
    "You are DIO, a hero learning to reason step by step.",
    "Is this correct?", "It is incorrect.", "It is correct.",
    "This is incorrect. Find the correct solution.",
    "The quick brown fox jumps over the lazy dog. 0123456789 + - * / = ? ( ) [ ] { }",
    "Hello! How are you today? I am training in the Realm.",
    "<|im_start|>system\n", "<|im_start|>user\n", "<|im_start|>assistant\n",
]


# Enough text per level for BPE to see every skill's vocabulary; 80 levels x 100
# problems keeps the build well under a minute on 2 cores.
PROBLEMS_PER_LEVEL = 100


def _corpus(seed: int) -> list[str]:
    import realm_skills as skills
    text = list(_GENERIC_TEXT)
    for skill_id in skills.skill_ids():
        for level in skills.skill_def(skill_id).levels:
            for p in skills.generate(skill_id, level, PROBLEMS_PER_LEVEL, seed=seed):
                text += [p.question, p.answer]
    return text


def build_tokenizer(seed: int = 0):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    # One token per digit and per circled bit (as Qwen splits digits): arithmetic is
    # learned column by column, not memorised as whole numbers. One token per capital
    # letter too: SY writes its words and syllables in capitals, so joining syllables is
    # copying letters (SY L1 took ~1,650 steps when each syllable was its own token).
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex("[\u24ea\u2460-\u2473A-Z]"), behavior="isolated"),
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE, special_tokens=SPECIAL_TOKENS, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(_corpus(seed), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        unk_token=None, model_max_length=ARCH["max_position_embeddings"],
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_dio_mini(dest: Path, seed: int = 0, force: bool = False) -> Path:
    """Build dio-mini into dest (an HF directory). Deterministic for a given seed."""
    dest = Path(dest)
    if (dest / "config.json").exists() and not force:
        return dest
    import torch
    from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    tokenizer = build_tokenizer(seed)
    eos, pad = tokenizer.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])
    config = Qwen3Config(vocab_size=len(tokenizer), bos_token_id=None, eos_token_id=eos,
                         pad_token_id=pad, **ARCH)
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(config)
    model.generation_config = GenerationConfig(eos_token_id=[eos, pad], pad_token_id=pad,
                                               max_new_tokens=64, do_sample=False)
    # Build beside the destination and rename, so a half-built hero is never seen.
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}-"))
    tmp.chmod(0o755)
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "dio_mini.json").write_text(json.dumps(
            {"seed": seed, "parameters": sum(p.numel() for p in model.parameters())}))
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest
