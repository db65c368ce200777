"""No held-out row is trained on, in seconds (the end-to-end proof, a real training run
watched batch by batch, is test_def_set.py's slow test): the quest's own held-out split
is disjoint from its training rows, and DEF's fixed held-out set is taken out of a quest
before the engine builds anything from it."""

from __future__ import annotations

import json

from transformers import AutoTokenizer

import realm_skills as skills
from realm_kernel.store.heldout import example_hash
from realm_kernel.store.ledger import Ledger
from realm_kernel.train import Job, TrainerEngine
from realm_kernel.train.data import build_datasets
from realm_kernel.train.def_set import fixed_heldout


def test_the_quests_held_out_rows_are_not_training_rows(dio_mini_dir):
    tok = AutoTokenizer.from_pretrained(dio_mini_dir)
    examples = [p.as_example() for p in skills.generate("bin", 3, 60, seed=11)]
    train, held, dropped = build_datasets(tok, examples, 256, eval_fraction=0.25, max_eval=10, seed=5)
    assert dropped == 0 and held is not None
    trained = {r["example"] for r in train.rows}
    held_out = {r["example"] for r in held.rows}
    assert len(held_out) == 10, "min(max_eval, a quarter of 60)"
    assert not trained & held_out, "a held-out row is also a training row"
    assert trained | held_out == set(range(len(examples))), "every row is one or the other"
    # The rows carry the tokens of their own example, not another's.
    for r in held.rows:
        alone = build_datasets(tok, [examples[r["example"]]], 256, 0.0, 0, 0)[0].rows[0]
        assert r["input_ids"] == alone["input_ids"]


def test_defs_fixed_set_is_taken_out_of_a_quest_before_training(realm_home):
    fixed = fixed_heldout(realm_home, "bin", 1)
    banned = {example_hash(e) for e in fixed}
    quest = [p.as_example() for p in skills.generate("bin", 1, 60, seed=3)] + fixed
    overlap = sum(example_hash(e) in banned for e in quest)
    assert overlap > len(fixed), "the quest holds every fixed example, some twice"
    led = Ledger(realm_home, "test")
    job = Job(quest_id="q.jsonl", examples=quest, model_path=realm_home.dio_mini, run_id="r",
              skill="bin", skill_level=1)
    kept = TrainerEngine(realm_home, led)._without_fixed_set(job).examples
    assert not [e for e in kept if example_hash(e) in banned]
    assert len(kept) == len(quest) - overlap, "only the fixed examples go"
    data = json.loads(led.query("SELECT data FROM events WHERE kind = 'heldout_excluded'")[0]["data"])
    assert data["excluded"] == overlap and (data["skill"], data["level"]) == ("bin", 1)
