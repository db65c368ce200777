"""Evals, the level-up rule, sparring and targeted sparring, through the ledger and CLI."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import realm_skills as skills
from realm_kernel.api import Realm
from realm_kernel.cli import app
from realm_kernel.evals.practice import SparringError, sparring_quest
from realm_kernel.evals.skillbook import check_sparring_file
from realm_kernel.quests.formats import load_quest
from realm_skills.evaluation import eval_problems
from realm_skills.sparring import (
    SAYS_RIGHT,
    SAYS_WRONG,
    check_sparring,
    sparring_examples,
    targeted_weights,
    weak_primitives,
)

from ..skill_helpers import wrong_answer


@pytest.fixture
def realm(tmp_path, monkeypatch) -> Realm:
    monkeypatch.setenv("REALM_HOME", str(tmp_path / "realm"))
    return Realm(tmp_path / "realm")


def _answers(problems, wrong_prims=(), every_other=False):
    """Golden answers, except wrong ones for the given primitives (or every other one)."""
    out = []
    for i, p in enumerate(problems):
        bad = p.primitive_id in wrong_prims or (every_other and i % 2)
        out.append(wrong_answer(p) if bad else p.answer)
    return out


def test_run_eval_reports_overall_and_per_primitive_accuracy():
    level = 27  # every BIN operation but add_no_carry
    problems = eval_problems("bin", level)
    assert len(problems) == skills.skill_def("bin").eval_size == 50
    assert problems == eval_problems("bin", level)
    res = skills.run_eval("bin", level, _answers(problems, {"bin_mul", "bin_xor"}))
    per = res.per_primitive_accuracy
    assert per["bin_mul"] == per["bin_xor"] == 0.0
    assert all(a == 1.0 for p, a in per.items() if p not in ("bin_mul", "bin_xor"))
    wrong = sum(s.n for p, s in res.per_primitive.items() if p in ("bin_mul", "bin_xor"))
    assert res.n == 50 and res.correct == 50 - wrong and len(res.wrong) == wrong
    assert res.accuracy == pytest.approx((50 - wrong) / 50)
    with pytest.raises(skills.SkillError, match="3 answers for 50 problems"):
        skills.run_eval("bin", level, ["x"] * 3, problems=problems)


def test_level_up_needs_three_consecutive_evals_at_or_above_80_percent():
    s = skills.SkillState("bin")
    assert not s.record(1, 0.9) and not s.record(1, 0.8)
    assert not s.record(1, 0.79)  # breaks the run
    assert not s.record(2, 1.0)  # another level's eval does not count
    assert not s.record(1, 0.85) and not s.record(1, 0.95)
    assert s.record(1, 0.8) and s.level == 2 and s.recent == []
    top = skills.SkillState.replay("bin", [(30, 1.0)] * 3)
    assert top.level == 1  # evals above the current level do not count
    s = skills.SkillState("sy", level=50)
    for _ in range(3):
        assert not s.record(50, 1.0)
    assert s.level == 50 and s.mastered


def test_sparring_gives_three_valid_examples_per_wrong_answer():
    problems = eval_problems("bin", 13, size=20)
    res = skills.run_eval("bin", 13, _answers(problems, every_other=True), problems=problems)
    examples = sparring_examples(res)
    assert len(examples) == 3 * len(res.wrong) == 30
    assert check_sparring(examples) == []
    kinds = [e["meta"]["sparring"] for e in examples]
    assert kinds == ["identify_wrong", "correct_it", "confirm_right"] * 10
    ident, fix, confirm = examples[:3]
    item = res.wrong[0]
    assert ident["messages"][0]["content"].startswith(item.problem.question)
    assert ident["messages"][0]["content"].endswith("Is this correct?")
    assert ident["messages"][1]["content"] == SAYS_WRONG
    assert fix["messages"][0]["content"].endswith("This is incorrect. Find the correct solution.")
    assert fix["messages"][1]["content"] == item.problem.answer
    assert confirm["messages"][1]["content"] == SAYS_RIGHT
    assert confirm["meta"]["primitive_id"] == item.problem.primitive_id
    assert item.problem.question not in confirm["messages"][0]["content"]
    # The validator catches a mislabelled or doctored example.
    bad = json.loads(json.dumps(examples))
    bad[0]["messages"][1]["content"] = SAYS_RIGHT
    bad[1]["messages"][1]["content"] = "Answer: " + wrong_answer(item.problem)
    bad[5]["meta"]["sparring"] = "chat"
    why = check_sparring(bad)
    assert any("example 1 (identify_wrong)" in w for w in why)
    assert any("example 2 (correct_it)" in w for w in why)
    assert any("example 6: meta.sparring is 'chat'" in w for w in why)
    assert any("unbalanced" in w for w in why)


def test_sparring_goes_to_queue_high_and_bad_sets_never_get_there(realm):
    problems = eval_problems("sy", 9, size=10)
    res = skills.run_eval("sy", 9, _answers(problems, every_other=True), problems=problems)
    path = realm.skills.spar(res)
    assert path.parent == realm.paths.queue("high") and path.name.startswith("sparring-")
    row = realm.sql(f"SELECT status, priority, sha256 FROM quest_status WHERE quest_id = '{path.name}'")
    assert row and row[0]["status"] == "queued" and row[0]["priority"] == "high" and row[0]["sha256"]
    examples, report = load_quest(path)
    assert report.ok and report.examples == 15
    assert check_sparring_file(path) == []
    broken = sparring_examples(res)[:2]
    with pytest.raises(SparringError, match="unbalanced"):
        sparring_quest(realm.home, broken, "spar-bad.jsonl")
    assert not (realm.paths.queue("high") / "spar-bad.jsonl").exists()
    assert not list((realm.paths.inbox / ".staging").iterdir())


def test_evals_land_in_the_ledger_and_drive_level_and_targeted_sparring(realm):
    for _ in range(3):
        problems = eval_problems("bin", 1)
        realm.skills.record_eval(skills.run_eval("bin", 1, _answers(problems)), step=100)
    assert realm.skills.state("bin")["level"] == 2
    problems = eval_problems("bin", 27)
    run_id = realm.skills.record_eval(skills.run_eval("bin", 27, _answers(problems, {"bin_mul"})), step=200)
    rows = realm.sql(f"SELECT * FROM primitive_accuracy WHERE run_id = '{run_id}'")
    assert {r["primitive_id"] for r in rows} == {p.primitive_id for p in problems}
    ev = realm.sql(f"SELECT accuracy, n, correct, step FROM evals WHERE run_id = '{run_id}'")[0]
    assert ev["n"] == 50 and ev["step"] == 200 and ev["correct"] == round(ev["accuracy"] * 50)
    report = realm.skills.eval_report("bin")
    assert report["state"]["level"] == 2  # level 27's eval does not move a level-2 skill
    path = realm.skills.targeted_quest("bin", level=27, count=40, seed=5)
    examples, rep = load_quest(path)
    assert rep.ok and path.parent == realm.paths.queue("high")
    assert {e["meta"]["primitive_id"] for e in examples} == {"bin_mul"}


def test_weak_primitive_report_and_weights():
    acc = {"a": 0.5, "b": 0.95, "c": 0.79, "d": 0.0}
    assert weak_primitives(acc) == [("d", 0.0), ("a", 0.5), ("c", 0.79)]
    w = targeted_weights(acc)
    assert set(w) == {"a", "c", "d"} and w["d"] > w["a"] > w["c"] > 0
    with pytest.raises(skills.SkillError, match="nothing to target"):
        targeted_weights({"a": 0.9})


def test_cli_skills_commands(realm, tmp_path):
    run = CliRunner().invoke
    out = run(app, ["skills", "list"])
    assert out.exit_code == 0 and {s["skill"] for s in json.loads(out.output)} == {"bin", "sy"}
    out = run(app, ["skills", "show", "sy", "--level", "10"])
    assert out.exit_code == 0 and json.loads(out.output)["sample"]["primitive_id"] == "sy_acrostic"
    out = run(app, ["skills", "show", "bin"])
    assert json.loads(out.output)["levels"]["30"]["bits"] == 32
    out = run(app, ["skills", "catalog"])
    assert sum(len(v) for v in json.loads(out.output).values()) == 60
    out = run(app, ["skills", "generate", "bin", "--level", "8", "--count", "3"])
    assert [json.loads(x)["level"] for x in out.output.splitlines()] == [8, 8, 8]
    quest = tmp_path / "q.jsonl"
    out = run(app, ["skills", "generate", "sy", "--level", "5", "--count", "4", "--out", str(quest)])
    assert out.exit_code == 0
    assert load_quest(quest)[1].examples == 4
    out = run(app, ["skills", "generate", "bin", "--level", "31"])
    assert out.exit_code == 2 and "no level 31" in out.output
    answers = tmp_path / "answers.jsonl"
    problems = eval_problems("bin", 1)
    answers.write_text("\n".join(json.dumps({"answer": a}) for a in _answers(problems, every_other=True)))
    out = run(app, ["skills", "eval", "bin", str(answers), "--level", "1", "--spar"])
    assert out.exit_code == 0, out.output
    res = json.loads(out.output)
    assert res["accuracy"] == 0.5 and "sparring-bin-L1-25w" in res["sparring"]
    out = run(app, ["skills", "eval-report", "bin"])
    report = json.loads(out.output)
    assert report["state"]["level"] == 1 and report["evals"][0]["accuracy"] == 0.5
    assert report["weak_primitives"] == [{"primitive_id": "bin_add_no_carry", "accuracy": 0.5}]


def test_realm_skills_eval_levels_up_like_the_eval_queue(realm, tmp_path):
    """`realm skills eval` records through the one grading path: three passing evals write
    one skill_level_up event (keyed per level), as the eval queue's do."""
    answers = tmp_path / "answers.jsonl"
    answers.write_text("\n".join(json.dumps({"answer": p.answer}) for p in eval_problems("bin", 1)))
    for _ in range(4):  # the fourth pass, at level 2's eval of level 1, writes no second event
        out = CliRunner().invoke(app, ["skills", "eval", "bin", str(answers), "--level", "1"])
        assert out.exit_code == 0, out.output
    ups = realm.sql("SELECT key, data FROM events WHERE kind = 'skill_level_up'")
    assert [u["key"] for u in ups] == ["level_up:bin:2"]
    assert json.loads(ups[0]["data"])["from_level"] == 1 and realm.skills.state("bin")["level"] == 2


def test_a_home_from_the_old_schema_gets_the_new_eval_columns(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from realm_kernel.store.ledger import Ledger
    from realm_kernel.store.paths import RealmPaths
    from realm_kernel.store.schema import SCHEMA_VERSION

    paths = RealmPaths.at(tmp_path / "old").ensure()
    Ledger(paths)
    current = paths.segments / "evals" / "current"
    (current / f"_schema-v{SCHEMA_VERSION}.parquet").unlink()
    old = pa.table({"skill": ["bin"], "level": [1], "accuracy": [0.5], "n": [10]})
    pq.write_table(old, current.resolve() / "0001-old.parquet")  # a v1 row: no correct/run_id
    rows = Ledger(paths).query("SELECT skill, accuracy, correct, run_id FROM evals")
    assert rows == [{"skill": "bin", "accuracy": 0.5, "correct": None, "run_id": None}]
