"""store/queries.py: the named read queries answer from the ledger's rows (most are also
exercised through their callers: achievements, skillbook, forgetting, the Task Master)."""

import json

from realm_kernel.store import queries
from realm_kernel.store.ledger import Ledger
from realm_kernel.store.paths import RealmPaths


def make(tmp_path) -> Ledger:
    return Ledger(RealmPaths.at(tmp_path).ensure(), "test")


def test_hero_step_and_quests(tmp_path):
    led = make(tmp_path)
    assert queries.hero_step(led) == 0 and queries.quest_status(led, "q.jsonl") is None
    led.append("metrics", [{"step": 5}, {"step": 12}])
    assert queries.hero_step(led) == 12
    led.append("quests", [{"quest_id": "q.jsonl", "status": "queued", "priority": "normal",
                           "sha256": "aa"},
                          {"quest_id": "old.jsonl", "status": "failed", "sha256": "bb"}])
    led.append("quests", [{"quest_id": "q.jsonl", "status": "processing", "run_id": "r1"}])
    assert queries.quest_status(led, "q.jsonl")["status"] == "processing"
    states = {r["quest_id"]: (r["status"], r["run_id"]) for r in queries.quest_states(led)}
    assert states == {"q.jsonl": ("processing", "r1"), "old.jsonl": ("failed", None)}
    live = queries.quest_hashes(led, ("queued", "processing", "completed"))
    assert live == [{"sha256": "aa", "quest_id": "q.jsonl"}], "the failed quest is not live"


def test_events_champion_and_eval_requests(tmp_path):
    led = make(tmp_path)
    assert not queries.has_event(led, "level_up:bin:2") and queries.champion_row(led) is None
    led.event("skill_level_up", "up", key="level_up:bin:2")
    assert queries.has_event(led, "level_up:bin:2")
    led.event("champion", "c", json.dumps({"step": 30, "name": "checkpoint-30", "path": "/c/30"}),
              key="champion")
    assert {k: queries.champion_row(led)[k] for k in ("step", "name", "path")} == {
        "step": 30, "name": "checkpoint-30", "path": "/c/30"}
    for name in ("checkpoint-1", "checkpoint-2", "checkpoint-1"):  # asked twice: listed once
        led.event("eval_requested", name, json.dumps({"checkpoint": name, "step": int(name[-1])}))
    assert [r["checkpoint"] for r in queries.pending_eval_requests(led)] == ["checkpoint-1", "checkpoint-2"]
    led.append("evals", [{"checkpoint": "checkpoint-1", "skill": "bin", "level": 1, "accuracy": 0.5}])
    led.event("eval_failed", "no", key="eval:checkpoint-2")
    assert queries.pending_eval_requests(led) == []
    assert queries.eval_answered(led, "checkpoint-1") and queries.eval_answered(led, "checkpoint-2")
    assert not queries.eval_answered(led, "checkpoint-3")


def test_the_champion_row_is_the_champion_views_row_and_reads_only_champion_segments(tmp_path,
                                                                                     monkeypatch):
    """champion_row reads the newest champion event as a tail read; it answers exactly as the
    champion view (schema.py) does, and a poll after other events opens no segment."""
    led = make(tmp_path)
    view = "SELECT step, name, path, ts FROM champion"
    for step in (30, 40, 35):  # promoted back to an older checkpoint last
        led.event("champion", "c", json.dumps({"step": step, "name": f"checkpoint-{step}",
                                               "path": f"/c/{step}"}), key="champion")
        for kind in ("checkpoint_saved", "eval_done"):
            led.event(kind, kind, json.dumps({"step": step + 1, "name": "not the champion"}))
        assert queries.champion_row(led) == led.query(view)[0]
    assert queries.champion_row(led)["step"] == 35
    monkeypatch.setattr(led, "query", None)  # no SQL over the whole table: tail reads only
    before = led.segments_read
    led.event("checkpoint_saved", "saved", json.dumps({"step": 99}))
    assert queries.champion_row(led)["step"] == 35 and led.segments_read == before
    led.event("champion", "c", json.dumps({"step": 50, "name": "checkpoint-50", "path": "/c/50"}),
              key="champion")
    assert queries.champion_row(led)["step"] == 50 and led.segments_read == before + 1


def test_evals_of_a_skill(tmp_path):
    led = make(tmp_path)
    assert queries.eval_count(led) == 0 and queries.latest_eval_accuracy(led, "bin", 1) is None
    led.append("evals", [{"skill": "bin", "level": 1, "accuracy": 0.4, "step": 1}])
    led.append("evals", [{"skill": "bin", "level": 1, "accuracy": 0.9, "step": 2},
                         {"skill": "sy", "level": 1, "accuracy": None, "step": 2}])
    assert queries.eval_count(led) == 3
    assert queries.latest_eval_accuracy(led, "bin", 1) == 0.9
    assert queries.skill_eval_history(led, "bin") == [{"level": 1, "accuracy": 0.4},
                                                      {"level": 1, "accuracy": 0.9}]
    assert queries.skill_eval_history(led, "sy") == [], "unscored evals do not count"
    assert [r["step"] for r in queries.recent_evals(led, "bin", 1)] == [2]


def test_achievements_and_tasks(tmp_path):
    led = make(tmp_path)
    assert queries.achievement_ids(led) == set() and queries.earned_achievements(led) == []
    led.append("achievements", [{"achievement_id": "first_eval", "name": "First trial", "step": 3}])
    led.append("achievements", [{"achievement_id": "first_eval", "name": "First trial", "step": 9}])
    assert queries.achievement_ids(led) == {"first_eval"}
    assert [r["step"] for r in queries.earned_achievements(led)] == [3], "the earliest row wins"
    facts = queries.achievement_facts(led)
    assert facts["steps"] == 0 and facts["evals"] == 0 and facts["sparring_examples"] == 0
    led.append("tasks", [{"task_id": "eval", "status": "running"}])
    led.append("tasks", [{"task_id": "eval", "status": "done", "output": "o.ipynb"},
                         {"task_id": "sparring", "status": "queued"}])
    assert {r["task_id"]: r["status"] for r in queries.task_history(led)} == {"eval": "done"}


def test_what_the_facade_shows(tmp_path):
    led = make(tmp_path)
    assert queries.latest_accuracy_and_completed(led) == {"accuracy": None, "completed": 0}
    assert queries.quest_sizes(led) == {} and queries.lineage(led) == []
    led.append("quests", [{"quest_id": "a.jsonl", "status": "queued", "examples": 8},
                          {"quest_id": "a.jsonl", "status": "completed", "examples": 10},
                          {"quest_id": "b.jsonl", "status": "queued"}])
    assert queries.quest_sizes(led) == {"a.jsonl": 10}, "the largest count; none without a count"
    led.append("evals", [{"skill": "bin", "level": 1, "accuracy": 0.25, "step": 3,
                          "checkpoint": "checkpoint-3"}])
    led.append("evals", [{"skill": "sy", "level": 2, "accuracy": 0.75, "step": 4}])
    facts = queries.latest_accuracy_and_completed(led)
    assert facts == {"accuracy": 0.75, "completed": 1}
    assert [r["skill"] for r in queries.eval_history(led)] == ["bin", "sy"]
    assert [r["skill"] for r in queries.eval_history(led, "sy")] == ["sy"]
    for kind in ("control", "skill_level_up", "control"):
        led.event(kind, kind)
    assert [r["kind"] for r in queries.recent_events(led, 2)] == ["control", "skill_level_up"]
    assert [r["kind"] for r in queries.recent_events(led, 5, ("skill_level_up",))] == ["skill_level_up"]
    assert queries.table_counts(led)["evals"] == 2 and queries.table_counts(led)["events"] == 3
    led.append("primitive_accuracy", [
        {"skill": "bin", "step": s, "primitive_id": p, "correct": c, "n": 4}
        for s, p, c in [(1, "add", 1), (2, "add", 2), (3, "add", 4), (3, "xor", 0)]])
    rows = queries.primitive_accuracy_by_step(led, "bin", 2)
    assert [(r["step"], r["primitive_id"], r["accuracy"]) for r in rows] == [
        (2, "add", 0.5), (3, "add", 1.0), (3, "xor", 0.0)], "the last two steps only"


def test_loss_alarm_steps_and_passive_runs(tmp_path):
    led = make(tmp_path)
    assert queries.loss_alarm_steps(led) == []
    for step in (7, None, 12):
        led.event("loss_alarm", "loss spiked", json.dumps({"step": step} if step else {}))
    led.event("rollback", "rolled back", json.dumps({"step": 99}))
    assert queries.loss_alarm_steps(led) == [7, 12]  # oldest first; an alarm without a step left out
    assert queries.loss_alarm_steps(led, 1) == [12]
    led.append("passive_probes", [{"run_id": "r1", "passive": "arithmetic", "primitive_id": "add",
                                   "n": 2, "correct": 1, "step": 5},
                                  {"run_id": "r1", "passive": "grammar", "primitive_id": "agree",
                                   "n": 4, "correct": 4, "step": 5}])
    runs = queries.passive_runs(led, "grammar", 10)
    assert [(r["passive"], r["correct"], r["n"]) for r in runs] == [("grammar", 4, 4)]
    assert {r["passive"] for r in queries.passive_runs(led, None, 10)} == {"arithmetic", "grammar"}
