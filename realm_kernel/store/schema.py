"""The ledger's schema: every table's columns (TABLES), the views that give current
state (DERIVED_VIEWS: the latest row per key) and SCHEMA_VERSION.

SCHEMA_VERSION names the column set of every table. Columns are only ever added; a
writer on an older ledger migrates it (store/ledger.py `ensure_segments`). Every table
also carries `_seg` (SEG), the segment a row was first written to, which raw readers
dedupe by and every view hides. The named read queries over these are store/queries.py.
"""

from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = 6  # v2 (two branches): evals.correct/run_id, runs, primitive_accuracy,
#                     assets, zones, tasks, achievements, quests.sha256, events.key; v3: both;
#                     v4: passive_probes; v5: _seg (each row's origin segment, raw readers);
#                     v6: metrics.def_loss (the fixed held-out set's loss: DEF)
SEG = "_seg"  # the segment a row was first written to; hidden by every view

_TS = pa.timestamp("us", tz="UTC")

TABLES: dict[str, pa.Schema] = {
    "metrics": pa.schema([
        ("ts", _TS), ("run_id", pa.string()), ("quest", pa.string()),
        ("step", pa.int64()), ("local_step", pa.int64()), ("loss", pa.float64()),
        ("val_loss", pa.float64()), ("learning_rate", pa.float64()),
        ("grad_norm", pa.float64()), ("epoch", pa.float64()),
        ("tokens_per_s", pa.float64()), ("tokens_seen", pa.int64()),
        # The loss on the skill level's fixed held-out set (store/heldout.py): DEF = 1/it.
        ("def_loss", pa.float64()),
    ]),
    "checkpoints": pa.schema([
        ("ts", _TS), ("step", pa.int64()), ("name", pa.string()), ("path", pa.string()),
        ("date", pa.string()), ("loss", pa.float64()), ("val_loss", pa.float64()),
        ("learning_rate", pa.float64()), ("epoch", pa.float64()), ("skill", pa.string()),
        ("skill_level", pa.int64()), ("training_file", pa.string()), ("run_id", pa.string()),
    ]),
    "quests": pa.schema([
        ("ts", _TS), ("quest_id", pa.string()), ("status", pa.string()),
        ("priority", pa.string()), ("path", pa.string()), ("examples", pa.int64()),
        ("detail", pa.string()), ("run_id", pa.string()), ("sha256", pa.string()),
    ]),
    "runs": pa.schema([
        ("ts", _TS), ("run_id", pa.string()), ("quest_id", pa.string()),
        ("status", pa.string()), ("model_path", pa.string()), ("resume_from", pa.string()),
        ("step_start", pa.int64()), ("step_end", pa.int64()), ("loss", pa.float64()),
        ("detail", pa.string()),
    ]),
    "events": pa.schema([
        ("ts", _TS), ("kind", pa.string()), ("message", pa.string()),
        ("data", pa.string()), ("source", pa.string()), ("key", pa.string()),
    ]),
    "evals": pa.schema([
        ("ts", _TS), ("step", pa.int64()), ("checkpoint", pa.string()),
        ("skill", pa.string()), ("level", pa.int64()), ("accuracy", pa.float64()),
        ("n", pa.int64()), ("correct", pa.int64()), ("run_id", pa.string()),
    ]),
    # One row per primitive per eval; run_id joins it to its `evals` row.
    "primitive_accuracy": pa.schema([
        ("ts", _TS), ("run_id", pa.string()), ("step", pa.int64()), ("checkpoint", pa.string()),
        ("skill", pa.string()), ("level", pa.int64()), ("primitive_id", pa.string()),
        ("n", pa.int64()), ("correct", pa.int64()), ("accuracy", pa.float64()),
    ]),
    # The forgetting watch: one row per primitive per probe run (evals/forgetting.py);
    # `seconds` is the whole run's answering time (its cost), repeated on each row.
    "passive_probes": pa.schema([
        ("ts", _TS), ("run_id", pa.string()), ("step", pa.int64()), ("checkpoint", pa.string()),
        ("reason", pa.string()), ("passive", pa.string()), ("primitive_id", pa.string()),
        ("n", pa.int64()), ("correct", pa.int64()), ("accuracy", pa.float64()),
        ("seconds", pa.float64()),
    ]),
    "assets": pa.schema([
        ("ts", _TS), ("asset_id", pa.string()), ("type", pa.string()), ("name", pa.string()),
        ("zone", pa.string()), ("path", pa.string()), ("bytes", pa.int64()),
        ("step", pa.int64()), ("status", pa.string()), ("detail", pa.string()),
    ]),
    "zones": pa.schema([
        ("ts", _TS), ("zone_id", pa.string()), ("url", pa.string()), ("kind", pa.string()),
        ("status", pa.string()), ("detail", pa.string()),
    ]),
    "tasks": pa.schema([
        ("ts", _TS), ("task_id", pa.string()), ("name", pa.string()), ("status", pa.string()),
        ("priority", pa.int64()), ("notebook", pa.string()), ("output", pa.string()),
        ("detail", pa.string()),
    ]),
    "achievements": pa.schema([
        ("ts", _TS), ("achievement_id", pa.string()), ("name", pa.string()),
        ("description", pa.string()), ("step", pa.int64()),
    ]),
}


TABLES = {t: schema.append(pa.field(SEG, pa.string())) for t, schema in TABLES.items()}


def _latest(table: str, key: str, where: str = "") -> str:
    return (f"SELECT * FROM {table} {where} "
            f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY ts DESC) = 1")


# The champion's facts in its event's data (evals/champion.py writes them).
CHAMPION_COLUMNS = ("CAST(json_extract(data, '$.step') AS BIGINT) AS step, "
                    "json_extract_string(data, '$.name') AS name, "
                    "json_extract_string(data, '$.path') AS path")

# Views over the raw tables: current state is the latest event per key.
DERIVED_VIEWS = {
    "quest_status": _latest("quests", "quest_id"),
    "run_status": _latest("runs", "run_id"),
    "task_status": _latest("tasks", "task_id"),
    # One row per step: a step saved twice (a resumed run) shows its newest save.
    "checkpoint_ledger": _latest("checkpoints", "step"),
    # Where each asset lives now (a location deleted later drops out).
    "asset_locations": f"SELECT * FROM ({_latest('assets', 'asset_id, zone')}) "
                       "WHERE status = 'present'",
    "zone_status": f"SELECT * FROM ({_latest('zones', 'zone_id')}) WHERE status = 'active'",
    "champion": f"SELECT ts, key, message, data, source, {CHAMPION_COLUMNS} "
                "FROM events WHERE key = 'champion' ORDER BY ts DESC LIMIT 1",
    "hero": """
        SELECT
          (SELECT coalesce(max(step), 0) FROM metrics) AS steps,
          (SELECT loss FROM metrics WHERE loss IS NOT NULL
             ORDER BY step DESC, ts DESC LIMIT 1) AS loss,
          (SELECT val_loss FROM metrics WHERE val_loss IS NOT NULL
             ORDER BY step DESC, ts DESC LIMIT 1) AS val_loss,
          (SELECT accuracy FROM evals ORDER BY ts DESC LIMIT 1) AS accuracy,
          (SELECT count(*) FROM quest_status WHERE status = 'completed') AS completed
    """,
}
