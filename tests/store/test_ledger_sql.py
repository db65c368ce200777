"""`realm ledger sql` / `Realm.sql`: read-only over the ledger unless --unsafe is typed.

Each attack is run for real against DuckDB over a real ledger; the checks are on its
effects (no file written, no segment forged, the outside file's content never returned),
not only on an error being raised."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from realm_kernel.cli import app
from realm_kernel.store.ledger import Ledger, UnsafeQuery
from realm_kernel.store.paths import RealmPaths

SECRET = "the-outside-secret-7f3a"


@pytest.fixture
def home(tmp_path):
    paths = RealmPaths.at(tmp_path / "home").ensure()
    led = Ledger(paths, "test")
    led.event("test", "a row to read")
    led.close()
    (tmp_path / "outside.csv").write_text(f"secret\n{SECRET}\n")
    return paths


def sql(paths: RealmPaths, query: str, *flags: str):
    res = CliRunner().invoke(app, ["--home", str(paths.home), "ledger", "sql", *flags, query],
                             prog_name="realm")
    return res.exit_code, res.stdout, res.stderr


def segment_files(paths: RealmPaths) -> set[str]:
    return {p.as_posix() for p in paths.segments.rglob("*") if p.is_file()}


def test_a_select_over_the_views_answers(home):
    code, out, _ = sql(home, "SELECT message FROM events WHERE kind = 'test'")
    assert code == 0 and "a row to read" in out
    # DESCRIBE, SHOW and a CTE are reads too.
    assert sql(home, "DESCRIBE events")[0] == 0
    assert sql(home, "WITH e AS (SELECT * FROM events) SELECT count(*) AS n FROM e")[0] == 0


@pytest.mark.parametrize("what, query", [
    ("read a file outside", "SELECT * FROM read_csv('{outside}')"),
    ("read it as text", "SELECT content FROM read_text('{outside}')"),
    ("climb out of the ledger", "SELECT content FROM read_text('{segments}/../../outside.csv')"),
    ("list files", "SELECT * FROM glob('{tmp}/*')"),
])
def test_files_outside_the_ledger_cannot_be_read(home, what, query):
    q = query.format(outside=home.home.parent / "outside.csv", segments=home.segments,
                     tmp=home.home.parent)
    code, out, err = sql(home, q)
    assert code == 2, (what, out)
    assert SECRET not in out + err


@pytest.mark.parametrize("what, query", [
    ("copy out", "COPY (SELECT 1 AS a) TO '{tmp}/leak.csv'"),
    ("forge a segment", "COPY (SELECT * FROM events) "
                        "TO '{segments}/events/current/forged.parquet' (FORMAT parquet)"),
    ("attach", "ATTACH '{tmp}/other.duckdb' AS other"),
    ("attach in memory", "ATTACH ':memory:' AS other"),
    ("create", "CREATE TABLE t AS SELECT 1"),
    ("replace a view", "CREATE OR REPLACE VIEW events AS SELECT 1 AS forged"),
    ("turn access back on", "SET enable_external_access = true"),
    ("install", "INSTALL httpfs"),
    ("hide a write after a read", "SELECT 1; COPY (SELECT 1 AS a) TO '{tmp}/leak.csv'"),
    ("export", "EXPORT DATABASE '{tmp}/dump'"),
])
def test_writes_and_attach_are_refused_and_nothing_changes(home, what, query):
    before = segment_files(home)
    tmp = home.home.parent
    code, out, err = sql(home, query.format(tmp=tmp, segments=home.segments))
    assert code == 2, (what, out)
    assert "--unsafe" in err  # the refusal names the flag that would allow it
    assert not (tmp / "leak.csv").exists() and not (tmp / "other.duckdb").exists()
    assert not (tmp / "dump").exists()
    assert segment_files(home) == before
    # The views are still the ledger's.
    assert "a row to read" in sql(home, "SELECT message FROM events")[1]


def test_the_refusal_is_a_value_error_naming_the_statement(home):
    led = Ledger(home)
    with pytest.raises(UnsafeQuery, match="COPY refused"):
        led.user_query(f"COPY (SELECT 1) TO '{home.home.parent}/x.csv'")
    # Our own readers keep their unrestricted connection.
    assert led.query("SELECT count(*) AS n FROM events")[0]["n"] == 1
    led.close()


def test_unsafe_allows_writes_and_says_so(home):
    dest = home.home.parent / "out.csv"
    code, _, err = sql(home, f"COPY (SELECT message FROM events) TO '{dest}'", "--unsafe")
    assert code == 0, err
    assert "--unsafe" in err and "write" in err
    assert "a row to read" in dest.read_text()
    code, out, _ = sql(home, f"SELECT * FROM read_csv('{home.home.parent / 'outside.csv'}')",
                       "--unsafe")
    assert code == 0 and SECRET in out
    # What an unsafe statement did to its views dies with its connection.
    sql(home, "CREATE OR REPLACE VIEW events AS SELECT 'forged' AS message", "--unsafe")
    assert "a row to read" in sql(home, "SELECT message FROM events")[1]
