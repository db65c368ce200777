import pytest
import torch

from realm_kernel.train.data import IGNORE, PadCollator, assistant_spans, build_datasets, tokenize_example


@pytest.fixture(scope="module")
def tok(dio_mini_dir):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(dio_mini_dir)


def labelled_text(tok, row):
    return tok.decode([t for t, lab in zip(row["input_ids"], row["labels"], strict=False) if lab != IGNORE])


def test_only_assistant_tokens_and_their_end_of_turn_carry_loss(tok):
    msgs = [{"role": "system", "content": "be brief"},
            {"role": "user", "content": "①① + ⓪⓪ = ?"},
            {"role": "assistant", "content": "①①"},
            {"role": "user", "content": "again ①①"},
            {"role": "assistant", "content": "⓪①"}]
    row = tokenize_example(tok, msgs, 256)
    assert labelled_text(tok, row) == "①①<|im_end|>⓪①<|im_end|>"
    assert len(row["input_ids"]) == len(row["labels"])


def test_reply_quoted_in_the_prompt_is_not_mistaken_for_the_reply(tok):
    msgs = [{"role": "user", "content": "say ⓪① please"}, {"role": "assistant", "content": "⓪①"}]
    row = tokenize_example(tok, msgs, 256)
    text = tok.apply_chat_template(msgs, tokenize=False)
    spans = assistant_spans(text, msgs, tok.eos_token)
    assert text[spans[0][0]:spans[0][1]] == "⓪①<|im_end|>"
    assert labelled_text(tok, row) == "⓪①<|im_end|>"


def test_truncation_can_drop_all_loss_and_such_rows_are_dropped(tok):
    long_prompt = [{"role": "user", "content": "x " * 400}, {"role": "assistant", "content": "ok"}]
    short = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]
    train, held, dropped = build_datasets(tok, [{"messages": long_prompt}, {"messages": short}],
                                          max_length=32, eval_fraction=0.0, max_eval=0, seed=0)
    assert dropped == 1 and len(train) == 1 and held is None


def test_collator_pads_without_loss(tok):
    rows = [{"input_ids": [5, 6, 7], "labels": [IGNORE, 6, 7]}, {"input_ids": [8], "labels": [8]}]
    batch = PadCollator(tok.pad_token_id)(rows)
    assert batch["input_ids"].shape == (2, 3)
    assert batch["labels"][1].tolist() == [8, IGNORE, IGNORE]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["input_ids"].dtype == torch.long
