"""Named read queries: the SQL the layers above run against the ledger, beside its table
schemas (store/schema.py's TABLES and views), so a schema change touches store/ only.

Each function takes a `Ledger` and returns rows (dicts), one row, or one value. What is
read about checkpoints lives in store/checkpoints.py, the vault's catalog reads in
store/vault.py; `Ledger.query` itself stays open for the `realm ledger sql` passthrough.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .ledger import Ledger
from .schema import CHAMPION_COLUMNS

Row = dict[str, Any]


# -- the hero and its quests ----------------------------------------------------------

def hero_step(ledger: Ledger) -> int:
    """The hero's steps so far: the highest training step in `metrics` (0 before any)."""
    return int(ledger.scalar("SELECT coalesce(max(step), 0) FROM metrics") or 0)


def quest_status(ledger: Ledger, quest_id: str) -> Row | None:
    """A quest's latest row (`quest_status`), or None when the ledger has none."""
    rows = ledger.query("SELECT * FROM quest_status WHERE quest_id = ?", [quest_id])
    return rows[0] if rows else None


def quest_states(ledger: Ledger) -> list[Row]:
    """Every quest's latest status, priority and run id."""
    return ledger.query("SELECT quest_id, status, priority, run_id FROM quest_status")


def quest_hashes(ledger: Ledger, states: Sequence[str]) -> list[Row]:
    """(sha256, quest_id) of the quests whose latest status is one of `states`."""
    marks = ", ".join("?" for _ in states)
    return ledger.query(
        "SELECT DISTINCT q.sha256, s.quest_id FROM quests q JOIN quest_status s USING (quest_id) "
        f"WHERE q.sha256 IS NOT NULL AND s.status IN ({marks})", list(states))


def generated_quest_counts(ledger: Ledger) -> list[Row]:
    """(skill, n): the quests the realm generated per skill (`quest_generated` events)."""
    return ledger.query("SELECT json_extract_string(data, '$.skill') AS skill, count(*) AS n "
                        "FROM events WHERE kind = 'quest_generated' GROUP BY 1")


# -- evals and skills -----------------------------------------------------------------

def eval_count(ledger: Ledger) -> int:
    return ledger.query("SELECT count(*) AS n FROM evals")[0]["n"]


def skill_eval_history(ledger: Ledger, skill: str) -> list[Row]:
    """(level, accuracy) of every scored eval of a skill, oldest first."""
    return ledger.query("SELECT level, accuracy FROM evals WHERE skill = ? AND accuracy IS NOT NULL "
                        "ORDER BY ts", [skill])


def recent_evals(ledger: Ledger, skill: str, limit: int) -> list[Row]:
    """A skill's latest `limit` evals, newest first."""
    return ledger.query("SELECT ts, step, checkpoint, level, accuracy, n, correct, run_id FROM evals "
                        "WHERE skill = ? ORDER BY ts DESC LIMIT ?", [skill, limit])


def latest_eval_accuracy(ledger: Ledger, skill: str, level: int) -> float | None:
    """The accuracy of the latest eval of a skill level (None before the first)."""
    rows = ledger.query("SELECT accuracy FROM evals WHERE skill = ? AND level = ? "
                        "ORDER BY ts DESC LIMIT 1", [skill, level])
    return rows[0]["accuracy"] if rows else None


def latest_primitive_accuracy(ledger: Ledger, skill: str, level: int) -> list[Row]:
    """(primitive_id, accuracy) of the latest eval of that skill level that scored any."""
    return ledger.query("""
        SELECT primitive_id, accuracy FROM primitive_accuracy
        WHERE run_id = (SELECT run_id FROM primitive_accuracy WHERE skill = ? AND level = ?
                        ORDER BY ts DESC LIMIT 1)
        ORDER BY primitive_id""", [skill, level])


def primitive_totals(ledger: Ledger, skill: str) -> list[Row]:
    """Per scored primitive of a skill: evals, best and latest accuracy, the latest level
    and step, problems and correct answers over all evals."""
    return ledger.query("""
        SELECT primitive_id, count(*) AS n_evals, max(accuracy) AS best,
               arg_max(accuracy, ts) AS latest, arg_max(level, ts) AS level,
               arg_max(step, ts) AS step, sum(correct) AS correct, sum(n) AS n
        FROM primitive_accuracy WHERE skill = ? GROUP BY primitive_id""", [skill])


def pending_eval_requests(ledger: Ledger) -> list[Row]:
    """Eval requests no eval (or eval failure event) answered yet, oldest first; one per
    checkpoint (its first request)."""
    return ledger.query("""
        WITH req AS (
            SELECT ts, json_extract_string(data, '$.checkpoint') AS checkpoint,
                   CAST(json_extract(data, '$.step') AS BIGINT) AS step,
                   json_extract_string(data, '$.path') AS path,
                   json_extract_string(data, '$.skill') AS skill,
                   CAST(json_extract(data, '$.level') AS BIGINT) AS trained_level
            FROM events WHERE kind = 'eval_requested'
            QUALIFY row_number() OVER (PARTITION BY checkpoint ORDER BY ts) = 1)
        SELECT * FROM req
        WHERE checkpoint NOT IN (SELECT checkpoint FROM evals WHERE checkpoint IS NOT NULL)
          AND 'eval:' || checkpoint NOT IN (SELECT key FROM events WHERE key LIKE 'eval:%')
        ORDER BY ts""")


def eval_answered(ledger: Ledger, checkpoint: str) -> bool:
    """Whether a checkpoint has an eval row or an `eval:<checkpoint>` event."""
    return bool(ledger.query(
        "SELECT 1 FROM evals WHERE checkpoint = ? UNION ALL "
        "SELECT 1 FROM events WHERE key = ? LIMIT 1", [checkpoint, f"eval:{checkpoint}"]))


# -- events ---------------------------------------------------------------------------

def has_event(ledger: Ledger, key: str) -> bool:
    """Whether an event with this key was written (keys make events happen once)."""
    return bool(ledger.query("SELECT 1 FROM events WHERE key = ? LIMIT 1", [key]))


def champion_row(ledger: Ledger) -> Row | None:
    """The current champion (step, name, path, ts), or None: the champion view's row, as a
    tail read of the newest `champion` event (evals/champion.py writes it, and only it,
    with the key 'champion'), so the Vault's poll opens no segment of other events."""
    rows = ledger.tail("events", f"{CHAMPION_COLUMNS}, ts", 1, key="ts", kinds=["champion"])
    return rows[0] if rows else None


# -- achievements ---------------------------------------------------------------------

def achievement_facts(ledger: Ledger) -> Row:
    """The counts the achievements are earned by: steps, completed quests, checkpoints,
    champions, evals and sparring examples."""
    return ledger.query("""
        SELECT (SELECT coalesce(max(step), 0) FROM metrics) AS steps,
               (SELECT count(*) FROM quest_status WHERE status = 'completed') AS completed,
               (SELECT count(*) FROM checkpoint_ledger) AS checkpoints,
               (SELECT count(*) FROM events WHERE key = 'champion') AS champions,
               (SELECT count(*) FROM evals) AS evals,
               (SELECT coalesce(sum(ex), 0) FROM (SELECT max(examples) AS ex FROM quests
                 WHERE quest_id LIKE 'sparring%' GROUP BY quest_id)) AS sparring_examples""")[0]


def earned_achievements(ledger: Ledger) -> list[Row]:
    """Each earned achievement once (its earliest row), oldest first."""
    return ledger.query("""
        SELECT ts, achievement_id, name, description, step FROM achievements
        QUALIFY row_number() OVER (PARTITION BY achievement_id ORDER BY ts) = 1
        ORDER BY ts, achievement_id""")


def achievement_ids(ledger: Ledger) -> set[str]:
    return {r["achievement_id"] for r in ledger.query(
        "SELECT DISTINCT achievement_id FROM achievements")}


# -- the forgetting watch (passive probes) ------------------------------------------------

def passive_drops(ledger: Ledger, run_id: str, drop: float) -> list[Row]:
    """(passive, accuracy, best): the passives of probe run `run_id` more than `drop`
    (a fraction) below their best earlier run."""
    return ledger.query("""
        WITH runs AS (SELECT run_id, passive, min(ts) AS ts, sum(correct) / sum(n) AS acc
                      FROM passive_probes GROUP BY run_id, passive),
             now AS (SELECT passive, acc, ts FROM runs WHERE run_id = ?)
        SELECT now.passive, now.acc AS accuracy, max(r.acc) AS best
        FROM now JOIN runs r ON r.passive = now.passive AND r.ts < now.ts AND r.run_id <> ?
        GROUP BY now.passive, now.acc
        HAVING max(r.acc) - now.acc > ?
        ORDER BY now.passive""", [run_id, run_id, drop])


def passive_runs(ledger: Ledger, passive: str | None, limit: int) -> list[Row]:
    """One row per probe run and passive (all passives when None), oldest first: step,
    reason, correct, n and the run's seconds."""
    where, args = ("WHERE passive = ?", [passive]) if passive else ("", [])
    return ledger.query(f"""
        SELECT run_id, passive, min(ts) AS ts, any_value(step) AS step, any_value(reason) AS reason,
               sum(correct) AS correct, sum(n) AS n, any_value(seconds) AS seconds
        FROM passive_probes {where} GROUP BY run_id, passive ORDER BY ts LIMIT ?""",
                        [*args, limit])


def probe_costs(ledger: Ledger) -> Row:
    """runs, mean_s, max_s, total_s: what the probe runs cost."""
    return ledger.query("SELECT count(*) AS runs, coalesce(avg(s), 0) AS mean_s, "
                        "coalesce(max(s), 0) AS max_s, coalesce(sum(s), 0) AS total_s FROM "
                        "(SELECT run_id, any_value(seconds) AS s FROM passive_probes GROUP BY 1)")[0]


# -- the Task Master --------------------------------------------------------------------

def task_history(ledger: Ledger) -> list[Row]:
    """Per task its latest row that is done, failed, running or cancelled."""
    return ledger.query("""
        SELECT task_id, status, ts, output, detail,
               row_number() OVER (PARTITION BY task_id ORDER BY ts DESC) AS r
        FROM tasks WHERE status IN ('done', 'failed', 'running', 'cancelled')
        QUALIFY r = 1""")


# -- what the facade shows (realm_kernel/api) ---------------------------------------------

def latest_accuracy_and_completed(ledger: Ledger) -> Row:
    """The newest eval's accuracy (None before any) and how many quests completed: the
    hero card's ACC and gold."""
    return ledger.kept_query("""SELECT (SELECT accuracy FROM evals ORDER BY ts DESC LIMIT 1) AS accuracy,
        (SELECT count(*) FROM quest_status WHERE status = 'completed') AS completed""")[0]


def quest_sizes(ledger: Ledger) -> dict[str, int]:
    """Examples per quest name, as admission counted them."""
    return {r["quest_id"]: r["n"] for r in ledger.query(
        "SELECT quest_id, max(examples) AS n FROM quests WHERE examples IS NOT NULL GROUP BY quest_id")}


# The newest events are tail reads (Ledger.tail by ts): the Tavern polls them while DIO
# writes an event a second, and each poll opens only the segments written since its last.

def loss_alarm_steps(ledger: Ledger, limit: int = 50) -> list[int]:
    """The hero's steps where the newest loss alarms fired (train/retries.py), oldest first."""
    rows = ledger.tail("events", "CAST(json_extract(data, '$.step') AS BIGINT) AS step", limit,
                       key="ts", kinds=["loss_alarm"])
    return [int(r["step"]) for r in reversed(rows) if r["step"] is not None]


def recent_events(ledger: Ledger, limit: int, kinds: Sequence[str] | None = None) -> list[Row]:
    """The newest events (ts, kind, message), newest first; only these kinds when given."""
    return ledger.tail("events", "ts, kind, message", limit, key="ts", kinds=kinds)


def table_counts(ledger: Ledger) -> Row:
    """Rows in the main tables and views (the `stats` report)."""
    return ledger.query("""
        SELECT (SELECT count(*) FROM metrics) AS metrics,
               (SELECT count(*) FROM checkpoint_ledger) AS checkpoints,
               (SELECT count(*) FROM quest_status) AS quests,
               (SELECT count(*) FROM run_status) AS runs,
               (SELECT count(*) FROM evals) AS evals,
               (SELECT count(*) FROM events) AS events""")[0]


def eval_history(ledger: Ledger, skill: str | None = None) -> list[Row]:
    """Every eval (ts, step, skill, level, accuracy), oldest first; one skill's when given."""
    return ledger.query("SELECT ts, step, skill, level, accuracy FROM evals "
                        "WHERE (? IS NULL OR skill = ?) ORDER BY ts", [skill, skill])


def primitive_accuracy_by_step(ledger: Ledger, skill: str, checkpoints: int) -> list[Row]:
    """(step, primitive_id, accuracy) of a skill over its last `checkpoints` evaluated steps."""
    return ledger.query("""
        WITH recent AS (SELECT DISTINCT step FROM primitive_accuracy
                        WHERE skill = ? AND step IS NOT NULL ORDER BY step DESC LIMIT ?)
        SELECT step, primitive_id, sum(correct) / nullif(sum(n), 0) AS accuracy
        FROM primitive_accuracy WHERE skill = ? AND step IN (SELECT step FROM recent)
        GROUP BY step, primitive_id ORDER BY step, primitive_id""", [skill, checkpoints, skill])


def lineage(ledger: Ledger) -> list[Row]:
    """Which quest trained which checkpoint, with its eval, by step."""
    return ledger.query("""
        SELECT c.step, c.name, c.training_file AS quest, c.skill, c.skill_level, c.loss,
               e.level AS eval_level, e.accuracy
        FROM checkpoint_ledger c LEFT JOIN evals e ON e.checkpoint = c.name
        ORDER BY c.step""")
