"""What the realm refuses to do for DIO, each refusal naming why (evals/practice.py,
skillbook.py; a probe with no checkpoint on disk, evalqueue.py), the sources a checkpoint
is answered from (placement.py, one machine) and the hero's stats as the API returns them
(hero.py)."""

from __future__ import annotations

import json

import pytest

import realm_skills as skills
from realm_kernel.evals import evalqueue, placement, practice, skillbook
from realm_kernel.evals.hero import hero_stats
from realm_kernel.store.home import Home
from realm_skills.evaluation import run_eval


@pytest.fixture
def home(tmp_path) -> Home:
    return Home(tmp_path / "home")


def test_targeted_practice_needs_an_eval_of_its_level(home):
    with pytest.raises(skills.SkillError) as e:
        practice.targeted_quest(home, "bin", 2, count=10, seed=1)
    assert str(e.value) == "no eval of bin level 2 in the ledger yet"
    with pytest.raises(skills.SkillError, match="no eval of bin level 1 in the ledger yet"):
        practice.targeted_quest(home, "bin", count=10, seed=1)  # the skill's own level
    assert list(home.paths.queue("high").iterdir()) == []


def test_sparring_refuses_a_perfect_eval_and_unsound_examples(home):
    probs = skills.generate("bin", 1, 3, 5)
    perfect = run_eval("bin", 1, [p.answer for p in probs], problems=probs)
    with pytest.raises(practice.SparringError) as e:
        practice.spar_result(home, perfect)
    assert str(e.value) == "every answer was right: nothing to spar about"
    bad = [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
            "meta": {"sparring": "nonsense"}}]
    with pytest.raises(practice.SparringError, match="example 1: meta.sparring is 'nonsense'"):
        practice.sparring_quest(home, bad, "sparring-x.jsonl")
    assert list(home.paths.queue("high").iterdir()) == []
    wrong = run_eval("bin", 1, ["Answer: 0"] * 3, problems=probs)
    path = practice.spar_result(home, wrong, seed=3)
    assert path.parent == home.paths.queue("high") and path.name.startswith("sparring-bin-L1-")
    assert f"-{len(wrong.wrong)}w-" in path.name
    assert len(path.read_text().splitlines()) == 3 * len(wrong.wrong)
    with pytest.raises(practice.SparringError, match="duplicate quest"):  # a quest error, as sparring's
        practice.sparring_quest(home, [json.loads(x) for x in path.read_text().splitlines()], path.name)


def test_a_probe_needs_a_checkpoint_on_disk(home):
    with pytest.raises(FileNotFoundError) as e:
        evalqueue.probe_checkpoint(home)
    assert str(e.value) == "no checkpoint on disk to probe"
    with pytest.raises(FileNotFoundError) as e:
        evalqueue.probe_checkpoint(home, step=7)
    assert str(e.value) == "no checkpoint at step 7 on disk to probe"


def test_queued_sparring_files_are_each_checked(home):
    high = home.paths.queue("high")
    (high / "sparring-broken.jsonl").write_text("{oops\n")
    (high / "sparring-odd.jsonl").write_text(json.dumps(
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}) + "\n")
    (high / "other.jsonl").write_text("{oops\n")
    out = {r["file"].rsplit("/", 1)[-1]: r for r in skillbook.check_queued_sparring([high])}
    assert set(out) == {"sparring-broken.jsonl", "sparring-odd.jsonl"}, "only sparring files"
    broken = out["sparring-broken.jsonl"]
    assert not broken["ok"] and "invalid JSON" in broken["problems"][0]
    assert out["sparring-odd.jsonl"]["problems"] == [
        f"example 1: meta.sparring is None; expected one of {skills.sparring.KINDS}"]
    assert {r["queue"] for r in out.values()} == {"high"}


def test_a_checkpoint_is_answered_from_its_own_folder_on_one_machine(home, tmp_path):
    folder = tmp_path / "checkpoint-5"
    assert placement.checkpoint_sources(home, 5, folder) == [str(folder)]
    said = placement.backoff_events(home, "checkpoint-5")
    said({"from": {"batch": 8, "max_new_tokens": 64}, "to": {"batch": 4, "max_new_tokens": 32}})
    ev = home.ledger.query("SELECT message, data FROM events WHERE kind = 'eval_backoff'")[0]
    assert ev["message"] == ("Answering for checkpoint-5 ran out of memory: again at batch 4, "
                             "32 new tokens")
    assert json.loads(ev["data"]) == {"checkpoint": "checkpoint-5", "where": "answers",
                                      "from": {"batch": 8, "max_new_tokens": 64},
                                      "to": {"batch": 4, "max_new_tokens": 32}}


def test_the_heros_stats_as_the_api_returns_them():
    stats = hero_stats(name="DIO", steps=2345, loss=0.5, val_loss=0.25, accuracy=0.12345, quests_completed=3)
    assert stats.as_dict() == {
        "name": "DIO", "level": 2, "xp": 2345, "xp_into_level": 345, "xp_per_level": 1000, "atk": 2.0,
        "defense": 4.0, "acc": 0.1235, "gold": 300, "loss": 0.5, "val_loss": 0.25, "quests_completed": 3,
        "def_loss": None}
