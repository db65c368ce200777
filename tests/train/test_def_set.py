"""DEF's fixed held-out set (train/def_set.py, store/heldout.py): made once per skill
level, stored in the realm, scored at every save, and never in a training batch."""

from __future__ import annotations

import json

import pytest

import realm_skills as skills
from realm_kernel.store.config import load_config
from realm_kernel.store.heldout import example_hash
from realm_kernel.store.ledger import Ledger
from realm_kernel.train import Job, TrainerEngine
from realm_kernel.train.data import tokenize_example
from realm_kernel.train.def_set import fixed_heldout
from realm_kernel.train.loading import load_model_and_tokenizer
from realm_kernel.train.realm_trainer import RealmTrainer


def test_the_fixed_set_is_made_once_the_same_everywhere_and_kept(realm_home, tmp_path):
    first = fixed_heldout(realm_home, "bin", 1)
    path = realm_home.heldout / "bin-L1.jsonl"
    before = path.read_bytes()
    assert fixed_heldout(realm_home, "bin", 1) == first and path.read_bytes() == before
    # BIN L1 has 81 problems: a tenth is held out, nine tenths stay to train on.
    assert len(first) == 8 == len({example_hash(e) for e in first})
    from realm_kernel.store.paths import RealmPaths
    other = RealmPaths.at(tmp_path / "other").ensure()
    assert fixed_heldout(other, "bin", 1) == first, "a fixed seed: the same set in every realm"
    assert fixed_heldout(realm_home, None, None) is None
    assert fixed_heldout(realm_home, "no-such-skill", 1) is None
    assert fixed_heldout(realm_home, "../../outside", 1) is None  # a quest's meta names no path
    assert not (realm_home.home.parent / "outside-L1.jsonl").exists()
    from realm_kernel.store.confine import PathRefused
    from realm_kernel.store.heldout import fixed_set
    with pytest.raises(PathRefused, match="fixed held-out set"):
        fixed_set(realm_home, "../x", 1, lambda: first)


@pytest.mark.slow
def test_no_fixed_example_is_ever_trained_on_and_def_is_scored_at_every_save(realm_home, monkeypatch):
    fixed = fixed_heldout(realm_home, "bin", 1)
    # A quest that holds every fixed example (BIN L1 repeats its 81 problems).
    examples = [p.as_example() for p in skills.generate("bin", 1, 200, seed=3)] + fixed
    assert sum(example_hash(e) in {example_hash(f) for f in fixed} for e in examples) > len(fixed)
    cfg = load_config(realm_home.home).training.model_copy(update={"packing": False})
    _, tokenizer = load_model_and_tokenizer(realm_home.dio_mini)
    banned = {tuple(tokenize_example(tokenizer, e["messages"], cfg.max_length)["input_ids"])
              for e in fixed}
    trained: list[tuple] = []
    step = RealmTrainer.training_step

    def recording(self, model, inputs, *args, **kwargs):
        for ids, mask in zip(inputs["input_ids"].tolist(), inputs["attention_mask"].tolist(),
                             strict=True):
            trained.append(tuple(i for i, m in zip(ids, mask, strict=True) if m))
        return step(self, model, inputs, *args, **kwargs)
    monkeypatch.setattr(RealmTrainer, "training_step", recording)

    led = Ledger(realm_home, "test")
    job = Job(quest_id="q.jsonl", examples=examples, model_path=realm_home.dio_mini,
              run_id="run-def", training=cfg, skill="bin", skill_level=1)
    result = TrainerEngine(realm_home, led).run_job(job)
    assert result.success, result.error_message
    assert trained and not banned & set(trained), "a fixed held-out example was trained on"
    excluded = json.loads(led.query("SELECT data FROM events WHERE kind = 'heldout_excluded'")[0]["data"])
    assert excluded["excluded"] == sum(example_hash(e) in {example_hash(f) for f in fixed}
                                       for e in examples)
    saves = led.query("SELECT step, name FROM checkpoints ORDER BY step")
    scored = led.query("SELECT step, def_loss FROM metrics WHERE def_loss IS NOT NULL ORDER BY step")
    assert [r["step"] for r in scored] == [r["step"] for r in saves], "DEF scored at every save"
    assert all(r["def_loss"] > 0 for r in scored)
    assert led.scalar("SELECT count(*) FROM metrics WHERE val_loss IS NOT NULL") == len(saves), \
        "the quest's own held-out loss stays its own series"
    sidecar = json.loads((realm_home.checkpoints / saves[-1]["name"] / ".ledger.json").read_text())
    assert sidecar["def_loss"] == scored[-1]["def_loss"]


def test_the_hero_cards_def_is_the_inverse_of_the_fixed_set_loss(realm_home):
    from realm_kernel.api import Realm
    led = Ledger(realm_home, "daemon")
    led.append("metrics", [{"run_id": "r", "quest": "q.jsonl", "step": 5, "local_step": 5, "val_loss": 0.25},
                           {"run_id": "r", "quest": "q.jsonl", "step": 5, "local_step": 5, "def_loss": 0.5}])
    realm = Realm(realm_home.home)
    hero = realm.hero()
    assert (hero["defense"], hero["def_loss"], hero["val_loss"]) == (2.0, 0.5, 0.25)
    assert realm.reports.series("def_loss") == [[5, 0.5]]  # DEF's own series beside val_loss
