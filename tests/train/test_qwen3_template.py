"""Quests through a real Qwen3-style tokenizer and chat template (built offline to Qwen3's
spec, tests/qwen3_tokenizer.py), not only dio-mini's: the empty <think> block Qwen3
puts before the last reply carries no loss, reasoning in the reply does, and a tiny
Qwen3 with this tokenizer trains and answers."""

import pytest

from realm_kernel.train.data import IGNORE, build_datasets, tokenize_example
from realm_kernel.train.selfcheck import check_labels

from ..qwen3_tokenizer import QWEN3_CHAT_TEMPLATE, build_qwen3_tokenizer

SINGLE = [{"role": "user", "content": "What is 12 + 30?"}, {"role": "assistant", "content": "42"}]
MULTI = [{"role": "system", "content": "Be exact."}, {"role": "user", "content": "Capital of France?"},
         {"role": "assistant", "content": "Paris"}, {"role": "user", "content": "And 2+2?"},
         {"role": "assistant", "content": "4"}]
REASONING = [{"role": "user", "content": "What is 12 + 30?"},
             {"role": "assistant", "content": "<think>\nadd the tens\n</think>\n\n42"}]


@pytest.fixture(scope="module")
def tok():
    return build_qwen3_tokenizer()


def loss_text(tok, messages) -> str:
    row = tokenize_example(tok, messages, 512)
    return tok.decode([t for t, lab in zip(row["input_ids"], row["labels"], strict=True) if lab != IGNORE])


def test_qwen3_template_renders_as_qwen3_does(tok):
    assert tok.apply_chat_template(SINGLE, tokenize=False) == (
        "<|im_start|>user\nWhat is 12 + 30?<|im_end|>\n"
        "<|im_start|>assistant\n<think>\n\n</think>\n\n42<|im_end|>\n")
    prompt = tok.apply_chat_template(SINGLE[:1], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>assistant\n")
    assert tok.apply_chat_template(SINGLE[:1], tokenize=False, add_generation_prompt=True,
                                   enable_thinking=False).endswith("<think>\n\n</think>\n\n")
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    assert tok.tokenize("12345") == ["1", "2", "3", "4", "5"], "Qwen splits digits one by one"


def test_loss_only_on_replies_and_their_end_of_turn(tok):
    assert loss_text(tok, SINGLE) == "42<|im_end|>"  # not the template's empty <think> block
    assert loss_text(tok, MULTI) == "Paris<|im_end|>4<|im_end|>"
    assert loss_text(tok, REASONING) == "<think>\nadd the tens\n</think>\n\n42<|im_end|>"
    examples = [{"messages": m} for m in (SINGLE, MULTI, REASONING)]
    train, _, _ = build_datasets(tok, examples, 512, 0.0, 0, 0)
    check_labels(tok, train.rows, examples)  # the trainer's own self-check agrees


def test_reasoning_in_an_earlier_turn_is_refused_clearly(tok):
    """Qwen3's template drops the <think> part of replies before the last question: that
    reply is no longer in the text, so its loss cannot be masked — a named error, not a
    silently wrong mask."""
    history = [{"role": "user", "content": "q1"},
               {"role": "assistant", "content": "<think>\nx\n</think>\n\n1"},
               {"role": "user", "content": "q2"}, {"role": "assistant", "content": "2"}]
    assert "<think>\nx" not in tok.apply_chat_template(history, tokenize=False)
    with pytest.raises(ValueError, match="dropped an assistant message"):
        tokenize_example(tok, history, 512)


@pytest.mark.slow
def test_a_qwen3_with_this_tokenizer_trains_and_answers(realm_home, tmp_path):
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    from realm_kernel.oracle.answering import answer, load
    from realm_kernel.store.config import load_config
    from realm_kernel.store.ledger import Ledger
    from realm_kernel.train import Job, TrainerEngine
    from realm_kernel.train.dio_mini import ARCH

    model_dir = tmp_path / "qwen3-tiny"
    tok = build_qwen3_tokenizer(model_dir)
    eos, pad = tok.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])
    torch.manual_seed(0)
    Qwen3ForCausalLM(Qwen3Config(vocab_size=len(tok), eos_token_id=eos, pad_token_id=pad, bos_token_id=None,
                                 **ARCH)).save_pretrained(model_dir)
    led = Ledger(realm_home, "test")
    cfg = load_config(realm_home.home).training.model_copy(update={"max_steps": 3, "eval_fraction": 0.0,
                                                                   "batch_size": 2})
    res = TrainerEngine(realm_home, led).run_job(Job(
        quest_id="qwen3.jsonl", examples=[{"messages": m} for m in (SINGLE, MULTI, REASONING)] * 4,
        model_path=model_dir, run_id="qwen3", training=cfg))
    assert res.success, res.error_message
    assert led.scalar("SELECT count(*) FROM metrics WHERE run_id = 'qwen3' AND loss IS NOT NULL") == 3
    # The checkpoint keeps Qwen3's template, and answers through it with no special
    # token leaking into the text.
    ckpt = led.query("SELECT path FROM checkpoints WHERE run_id = 'qwen3' "
                     "ORDER BY step DESC LIMIT 1")[0]["path"]
    model, tok2 = load(ckpt)
    assert tok2.chat_template == QWEN3_CHAT_TEMPLATE
    out = answer(model, tok2, ["What is 12 + 30?", "Capital of France?"], 6)
    assert len(out.texts) == 2 and not any("<|im_" in t for t in out.texts)
