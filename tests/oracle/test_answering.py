"""Batched greedy answers (every eval and sparring round uses them) equal one-by-one
greedy decoding of the same checkpoint, question by question."""

import pytest
import torch

import realm_skills as skills
from realm_kernel.oracle.answering import answer, budget, load
from realm_kernel.oracle.pool import eos_ids

from ..oracle_helpers import oracle_home as oracle_home_fixture

oracle_home = oracle_home_fixture
pytestmark = pytest.mark.slow


def one_by_one(model, tok, question: str, max_new_tokens: int) -> str:
    """The reference: one prompt, no batch, plain greedy generate."""
    ids = tok.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)["input_ids"]
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                             max_new_tokens=max_new_tokens, eos_token_id=eos_ids(tok, model),
                             pad_token_id=tok.pad_token_id)
    return tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)


def test_batched_answers_equal_one_by_one_greedy_answers(oracle_home):
    from realm_kernel.api import Realm
    ckpt = Realm(oracle_home.home).checkpoints.get(30)
    model, tok = load(ckpt.path)
    # Several prompt lengths (levels 1, 3 and 6, and SY) in one call, more than one batch each.
    problems = [p for skill, level in (("bin", 1), ("bin", 3), ("bin", 6), ("sy", 2))
                for p in skills.generate(skill, level, 7, seed=level)]
    questions = [p.question for p in problems]
    assert len({len(tok(q)["input_ids"]) for q in questions}) >= 3, "prompts of several lengths"
    n = budget(tok, [p.answer for p in problems])
    batched = answer(model, tok, questions, n, batch_size=4).texts
    reference = [one_by_one(model, tok, q, n) for q in questions]
    assert any(reference), "the checkpoint answers something"
    mismatched = [(q, b, r) for q, b, r in zip(questions, batched, reference, strict=True) if b != r]
    assert not mismatched, f"{len(mismatched)} of {len(questions)} differ, e.g. {mismatched[0]}"
    assert answer(model, tok, questions, n, batch_size=64).texts == batched
