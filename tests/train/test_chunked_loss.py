"""Held-out loss in chunks of tokens (train/chunked_loss.py, RealmTrainer's
ChunkedEvalLossMixin) on the real dio-mini: the plain loss's figure, and never more than
chunk x vocab logits at once."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments

import realm_skills as skills
from realm_kernel.train import chunked_loss
from realm_kernel.train.data import PadCollator, build_datasets
from realm_kernel.train.realm_trainer import RealmTrainer

CHUNK = 4


@pytest.fixture(scope="module")
def hero(dio_mini_dir):
    model = AutoModelForCausalLM.from_pretrained(dio_mini_dir, dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(dio_mini_dir)


@pytest.fixture(scope="module")
def held_out(hero):
    _, tok = hero
    examples = [p.as_example() for p in skills.generate("sy", 2, 24, seed=5)]
    _, held, _ = build_datasets(tok, examples, 256, 0.5, 6, 0)
    return held


def test_the_chunked_loss_is_the_plain_loss_of_each_example(hero, held_out):
    model, tok = hero
    collate = PadCollator(tok.pad_token_id)
    for row in held_out:
        batch = collate([row])
        assert (batch["labels"] != -100).sum() > CHUNK  # several chunks per example
        with torch.no_grad():
            plain = model(**batch).loss
            chunked = chunked_loss.held_out_loss(model, batch, None, CHUNK)
        torch.testing.assert_close(chunked, plain, rtol=1e-5, atol=1e-6)


def _largest_logits(trainer_cls, model, tok, held, tmp_path) -> tuple[float, int]:
    """The held-out loss and the most logit rows the head produced in one call."""
    args = TrainingArguments(output_dir=str(tmp_path / trainer_cls.__name__), use_cpu=True,
                             per_device_eval_batch_size=len(held), report_to=[],
                             remove_unused_columns=False, disable_tqdm=True)
    trainer = trainer_cls(model=model, args=args, eval_dataset=held,
                          data_collator=PadCollator(tok.pad_token_id))
    trainer.eval_loss_chunk = CHUNK
    rows: list[int] = []
    hook = model.get_output_embeddings().register_forward_hook(
        lambda _m, _i, out: rows.append(out.shape[:-1].numel()))
    try:
        loss = trainer.evaluate()["eval_loss"]
    finally:
        hook.remove()
    return loss, max(rows)


def test_the_trainers_held_out_pass_never_holds_more_than_chunk_x_vocab_logits(hero, held_out, tmp_path):
    model, tok = hero
    plain_loss, plain_rows = _largest_logits(Trainer, model, tok, held_out, tmp_path)
    loss, rows = _largest_logits(RealmTrainer, model, tok, held_out, tmp_path)
    assert plain_rows > len(held_out) * CHUNK  # HF's pass: every position of the batch at once
    assert rows <= CHUNK
    assert loss == pytest.approx(plain_loss, rel=1e-5)
