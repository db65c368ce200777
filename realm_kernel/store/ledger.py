"""The ledger: the only module that touches ledger.duckdb and its Parquet segments.

DuckDB lets one process hold a database file read-write and then no other process may
even read it. So no process keeps ledger.duckdb open for writing: every writer (daemon,
task master, server) appends immutable, uniquely named Parquet segments per table
(temp name + os.replace), and ledger.duckdb holds only views over them. Readers —
a user's `duckdb.connect("ledger.duckdb", read_only=True)`, the widgets, the API —
never take a lock. Current state (a quest's status) is the latest event per key.

Compaction without double counting: a table's segments live in a generation folder,
`ledger/<table>/gen-NNNNNN/`, and our own readers read `ledger/<table>/current/*.parquet`
where `current` is a symlink. When a generation holds many small segments, a writer
merges them into one file in a new generation (hard links for the rest) and swaps the
symlink with one atomic rename: a listing sees either the old set or the new one, never
both. Appends and compactions of a table take a short flock so no append lands in a
generation that is being replaced. A query of ours that listed the old generation and
opens a merged-away file through the new `current` gets "No such file": `query()`
notices the generation change and runs again, so our own readers are always exact.

Raw readers (a user's `duckdb.connect("ledger.duckdb", read_only=True)`) cannot re-run a
query, and DuckDB reads a file twice (its footer when binding, its rows when executing),
so a path a raw reader listed must neither vanish nor change until it is done. Their
views (ledger.duckdb) read another folder, `ledger/<table>/raw/`, holding a hard link to
every live segment under its own name. A merged file is linked there beside its sources,
and every row carries `_seg`, the segment it was first written to (kept through merges),
so the raw views keep one copy per origin (`QUALIFY`). A source that left the live
generation over RAW_GRACE_S ago is unlinked from raw/ only while no raw connection is
open (DuckDB holds a shared lock on ledger.duckdb for a connection's life; we ask with
F_GETLK, and look at our own process's open files): an open connection never sees a file
vanish, and raw/ holds the merged-away sources of the compactions made while it was open
(more files to scan) until the next compaction after it closes. The dedup costs raw
readers a window over the rows they scan; our own views skip it.

Versioned schema (store/schema.py): `ensure_segments()` migrates an older ledger by
dropping an empty `_schema-vN.parquet` into each table's current generation, and the
views read with `union_by_name`, so older segments answer with nulls in the new columns.
`ledger_info` says which version the views were made for.

The tables and views are in store/schema.py; what the ledger knows about checkpoints
in store/checkpoints.py; the named read queries of the other tables in store/queries.py.
"""

from __future__ import annotations

import fcntl
import functools
import itertools
import json
import os
import re
import shutil
import struct
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from . import backup, faults
from .paths import RealmPaths, atomic_write_json
from .process import pid_alive
from .schema import DERIVED_VIEWS, SCHEMA_VERSION, SEG, TABLES

COMPACT_AT = 64  # segments in a generation before small ones are merged
ROW_GROUP_ROWS = 65536  # row groups small enough for min/max pruning of tail reads
SMALL_SEGMENT_BYTES = 4 << 20  # segments above this stay as they are (hard-linked)
OLD_GENERATION_GRACE_S = 120.0
TAILS_KEPT = 64  # tail() answers kept (the pages ask a dozen distinct ones)
QUERIES_KEPT = 256  # kept_query() answers kept
TAIL_KEY, TAIL_TS = "__realm_tail_key", "__realm_tail_ts"  # what orders a kept answer
RAW_GRACE_S = 120.0  # a merged-away source stays in raw/ at least this long


def _create_views(con: duckdb.DuckDBPyConnection, statements: list[str]) -> None:
    # Binding a view lists and opens its segments; a compaction swap in between is
    # simply retried.
    for stmt in statements:
        for attempt in range(5):
            try:
                con.execute(stmt)
                break
            except duckdb.IOException:
                if attempt == 4:
                    raise
                time.sleep(0.01)


def raw_readers_attached(db: Path) -> bool:
    """Whether a DuckDB connection holds ledger.duckdb open: another process's shows as a
    conflicting fcntl lock (F_GETLK, Linux's struct flock), our own in /proc/self/fd."""
    try:
        fd = os.open(db, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        query = struct.pack("hhqqixxxx", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        if struct.unpack("hhqqixxxx", fcntl.fcntl(fd, fcntl.F_GETLK, query))[0] != fcntl.F_UNLCK:
            return True
    except OSError:
        return True  # cannot tell: keep every file
    finally:
        os.close(fd)
    target = str(db.resolve())
    for fd_name in os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else ():
        try:
            if os.readlink(f"/proc/self/fd/{fd_name}") == target:
                return True
        except OSError:  # closed meanwhile
            continue
    return False


def _with_origin(data: pa.Table, origin: str) -> pa.Table:
    """Rows with no `_seg` (written before v5) get the origin raw readers know them by."""
    import pyarrow.compute as pc
    if SEG not in data.column_names:
        return data.append_column(SEG, pa.array([origin] * data.num_rows, pa.string()))
    i = data.column_names.index(SEG)
    return data.set_column(i, SEG, pc.fill_null(data[SEG], origin))


def now_utc() -> datetime:
    return datetime.now(UTC)


class Ledger:
    """Append rows as Parquet segments; query them through DuckDB views."""

    _seq = itertools.count()

    def __init__(self, paths: RealmPaths, writer: str = "reader") -> None:
        self.paths = paths
        self.writer = "".join(c for c in writer if c.isalnum() or c in "-_") or "w"
        self._conn: duckdb.DuckDBPyConnection | None = None
        self._user_conn: duckdb.DuckDBPyConnection | None = None
        self._lock = threading.Lock()
        self._stats: dict[Path, dict[Path, SegmentStats]] = {}  # table folder -> segment -> stats
        # tail(): per query, the segments its kept answer was read from, and the answer
        self._tails: dict[tuple, tuple[frozenset[Path], list[dict[str, Any]]]] = {}
        self.segments_read = 0  # segments tail() opened (counted by the tests, not timed)
        self._queries: dict[tuple, tuple[tuple, list[dict[str, Any]]]] = {}  # kept_query()
        self.ensure_segments()

    # -- layout -------------------------------------------------------------------
    def table_dir(self, table: str) -> Path:
        if table not in TABLES:
            raise KeyError(f"unknown ledger table {table!r}; known: {sorted(TABLES)}")
        return self.paths.segments / table

    def current_dir(self, table: str) -> Path:
        """The live generation of a table (a symlink readers glob through)."""
        return self.table_dir(table) / "current"

    def segment_files(self, table: str) -> list[Path]:
        return sorted(self.current_dir(table).glob("*.parquet"))

    def table_generation(self, table: str) -> tuple[str, int, str]:
        """A table's change stamp from one listing of its live generation, no file opened:
        (generation, segments, newest segment). Every append adds a segment (a new count),
        and every compaction makes a new generation, so any new row changes it."""
        gen = os.readlink(self.current_dir(table))
        names = [e.name for e in os.scandir(self.current_dir(table))
                 if e.name.endswith(".parquet") and not e.name.startswith(".")]
        return (gen, len(names), max(names, default=""))

    def kinds_generation(self, table: str, kinds: Sequence[str]) -> tuple[str, int, str]:
        """A change stamp of a table's rows of these kinds (its `kind` column): like
        table_generation, over only the segments whose statistics can hold one of them
        (each segment's footer is read once: snapshot()). A row of another kind leaves
        it as it was; a compaction (a new generation) changes it."""
        gen = self.current_dir(table).resolve()
        names = [s.path.name for s in self._snapshot_of(gen) if s.may_hold("kind", kinds)]
        return (gen.name, len(names), max(names, default=""))

    def raw_dir(self, table: str) -> Path:
        """Paths that never vanish under a raw reader (ledger.duckdb's views): module doc."""
        return self.table_dir(table) / "raw"

    @contextmanager
    def _table_lock(self, table: str):
        d = self.table_dir(table)
        d.mkdir(parents=True, exist_ok=True)
        fd = os.open(d / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def ensure_segments(self) -> None:
        """Every table gets a generation and an empty schema segment, so its view
        answers before any row is written."""
        marker = f"_schema-v{SCHEMA_VERSION}.parquet"
        if any(self.current_dir(t).is_dir() and not (self.current_dir(t) / marker).exists()
               for t in TABLES):
            backup.auto_snapshot(self.paths, "migration")  # an older ledger: keep it first
        for table, schema in TABLES.items():
            if (self.current_dir(table) / marker).exists() and (self.raw_dir(table) / marker).exists():
                continue
            with self._table_lock(table):
                if not self.current_dir(table).is_dir():
                    gen = self.table_dir(table) / "gen-000000"
                    gen.mkdir(exist_ok=True)
                    self._write_atomic(schema.empty_table(), gen / marker)
                    self._swap_current(table, gen.name)
                elif not (self.current_dir(table) / marker).exists():
                    # Migration: an empty segment with the new columns; union_by_name
                    # gives older segments nulls there.
                    self._write_atomic(schema.empty_table(),
                                       self.current_dir(table).resolve() / marker)
                self._sync_raw(table)

    def _swap_current(self, table: str, gen_name: str) -> None:
        link = self.current_dir(table)
        tmp = link.with_name(f".current.{os.getpid()}.tmp")
        tmp.unlink(missing_ok=True)
        os.symlink(gen_name, tmp)
        os.replace(tmp, link)

    def _view_sql(self, raw: bool = False) -> list[str]:
        """Our own views read the live generation; raw readers' (ledger.duckdb) read the
        stable links in raw/ and keep one copy of each origin's rows."""
        stmts = []
        for table in TABLES:
            folder = self.raw_dir(table) if raw else self.current_dir(table)
            glob = (folder / "*.parquet").as_posix().replace("'", "''")
            if raw:
                select = (f"SELECT * EXCLUDE ({SEG}, _f) FROM read_parquet('{glob}', "
                          "union_by_name = true, filename = '_f') "
                          f"QUALIFY _f = min(_f) OVER (PARTITION BY coalesce({SEG}, parse_filename(_f)))")
            else:
                select = f"SELECT * EXCLUDE ({SEG}) FROM read_parquet('{glob}', union_by_name = true)"
            stmts.append(f"CREATE OR REPLACE VIEW {table} AS {select}")
        stmts += [f"CREATE OR REPLACE VIEW {name} AS {sql}" for name, sql in DERIVED_VIEWS.items()]
        return stmts

    def ensure_views(self) -> bool:
        """(Re)create the views in ledger.duckdb with absolute paths.

        Returns False when another process holds the file (a user's read-only
        connection, say); the views then already exist and nothing is lost.
        """
        self.ensure_segments()  # raw/ too (a restored ledger brings only its generations)
        try:
            con = duckdb.connect(str(self.paths.ledger_db))
        except duckdb.Error:
            return False
        try:
            _create_views(con, self._view_sql(raw=True))
            con.execute(
                "CREATE OR REPLACE VIEW ledger_info AS SELECT "
                f"{SCHEMA_VERSION} AS schema_version, "
                f"'{self.paths.segments.as_posix()}' AS segments"
            )
        finally:
            con.close()
        return True

    # -- writing ------------------------------------------------------------------
    def _write_atomic(self, table: pa.Table, dest: Path) -> None:
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        pq.write_table(table, tmp, row_group_size=ROW_GROUP_ROWS)
        faults.point("ledger_write")
        os.replace(tmp, dest)

    def append(self, table: str, rows: Sequence[dict[str, Any]]) -> Path | None:
        """Append rows as one new immutable segment. Missing columns are null."""
        if not rows:
            return None
        schema = TABLES[table]
        unknown = set().union(*(r.keys() for r in rows)) - set(schema.names)
        if unknown:
            raise KeyError(f"ledger table {table!r} has no column(s) {sorted(unknown)}")
        name = f"{time.time_ns():020d}-{self.writer}-{os.getpid()}-{next(self._seq):06d}.parquet"
        cols = {}
        for spec in schema:
            values = [r.get(spec.name) for r in rows]
            if spec.name == "ts":
                values = [v or now_utc() for v in values]
            elif spec.name == SEG:
                values = [name] * len(rows)
            cols[spec.name] = pa.array(values, type=spec.type)
        data = pa.table(cols, schema=schema)
        with self._table_lock(table):
            dest = self.current_dir(table).resolve() / name
            self._write_atomic(data, dest)
            if sum(1 for _ in dest.parent.glob("*.parquet")) > COMPACT_AT:
                self._compact_locked(table)
            else:
                self._sync_raw(table)
        return dest

    def compact(self, table: str) -> int:
        """Merge the small segments of a table into one; returns segments merged."""
        with self._table_lock(table):
            return self._compact_locked(table)

    def _compact_locked(self, table: str) -> int:
        current = self.current_dir(table).resolve()
        files = sorted(current.glob("*.parquet"))
        small = [f for f in files if f.stat().st_size <= SMALL_SEGMENT_BYTES
                 and not f.name.startswith("_schema")]
        if len(small) < 2:
            return 0
        new = current.with_name(f"gen-{int(current.name.split('-')[1]) + 1:06d}")
        shutil.rmtree(new, ignore_errors=True)
        new.mkdir()
        merged = pa.concat_tables([_with_origin(pq.read_table(f), f.name) for f in small],
                                  promote_options="default")
        self._write_atomic(merged, new / f"{small[-1].stem}-m{len(small)}.parquet")
        for f in files:
            if f not in small:
                os.link(f, new / f.name)
        for f in small:  # the raw readers' grace counts from now (mtime of the shared inode)
            os.utime(f)
        self._swap_current(table, new.name)
        self._sync_raw(table)
        self._drop_old_generations(table, keep={new.name, current.name})
        return len(small)

    # -- raw/: paths that never vanish under a raw reader (module doc) ----------------
    def _sync_raw(self, table: str) -> None:
        """Under the table lock: every live segment linked into raw/; sources merged away
        over RAW_GRACE_S ago unlinked, unless a raw connection is open."""
        raw = self.raw_dir(table)
        raw.mkdir(exist_ok=True)
        live = {f.name: f for f in self.current_dir(table).resolve().glob("*.parquet")}
        present = {e.name: e for e in os.scandir(raw) if e.name.endswith(".parquet")}
        for name in live.keys() - present.keys():
            try:
                os.link(live[name], raw / name)  # a new name: never seen half-made
            except FileExistsError:
                pass
        cutoff = time.time() - RAW_GRACE_S
        stale = [e for name, e in present.items() if name not in live and e.stat().st_mtime < cutoff]
        if stale and not raw_readers_attached(self.paths.ledger_db):
            for e in stale:
                Path(e.path).unlink(missing_ok=True)

    def _drop_old_generations(self, table: str, keep: set[str]) -> None:
        cutoff = time.time() - OLD_GENERATION_GRACE_S
        for gen in self.table_dir(table).glob("gen-*"):
            if gen.name not in keep and gen.stat().st_mtime < cutoff:
                if not backup.keep_generation(self.paths, table, gen):  # kept by count there
                    shutil.rmtree(gen, ignore_errors=True)

    def event(self, kind: str, message: str, data: str = "", source: str | None = None,
              key: str | None = None) -> None:
        """An event; `key` makes it current state (the latest event per key wins)."""
        self.append("events", [{"kind": kind, "message": message, "data": data,
                                "source": source or self.writer, "key": key}])

    # -- reading ------------------------------------------------------------------
    def _connection(self) -> duckdb.DuckDBPyConnection:
        # An in-memory database with the same views: our own reads never touch the
        # ledger.duckdb file lock, and new segments show up on every query.
        if self._conn is None:
            con = duckdb.connect()
            _create_views(con, self._view_sql())
            self._conn = con
        return self._conn

    def _user_connection(self) -> duckdb.DuckDBPyConnection:
        # A user's SQL gets its own in-memory database whose file access is confined to
        # the ledger's segments and then locked: read_csv('/etc/passwd'), COPY TO a file,
        # ATTACH or INSTALL fail inside DuckDB, and SET cannot undo it.
        if self._user_conn is None:
            con = duckdb.connect()
            allowed = (self.paths.segments.resolve().as_posix() + "/").replace("'", "''")
            con.execute(f"SET allowed_directories = ['{allowed}']")
            con.execute("SET enable_external_access = false")
            con.execute("SET lock_configuration = true")
            _create_views(con, self._view_sql())
            self._user_conn = con
        return self._user_conn

    def user_query(self, sql: str, unsafe: bool = False) -> list[dict[str, Any]]:
        """A person's SQL (`realm ledger sql`, `Realm.sql`). By default read-only over the
        ledger: SELECT statements only (the allowed directory would still let COPY or
        ATTACH write inside the segments), on the confined connection. `unsafe` runs it
        with DuckDB's defaults: writes, any file and ATTACH, as the caller asked."""
        if unsafe:
            # A fresh connection: what the statement does to its views or settings
            # dies with it, never reaching our own reads.
            con = duckdb.connect()
            try:
                _create_views(con, self._view_sql())
                return self._run(con, sql, None)
            finally:
                con.close()
        check_read_only(sql)
        with self._lock:
            con = self._user_connection()
        return self._run(con, sql, None)

    def generations(self) -> tuple[str, ...]:
        return tuple(os.readlink(self.current_dir(t)) for t in TABLES)

    def query(self, sql: str, params: Iterable[Any] | None = None) -> list[dict[str, Any]]:
        """Run SQL over the views. A query that straddled a compaction is run again, so
        our own readers always get an exact answer."""
        with self._lock:
            con = self._connection()
        return self._run(con, sql, params)

    def kept_query(self, sql: str, params: Iterable[Any] | None = None) -> list[dict[str, Any]]:
        """query(), run again only when a table it reads has changed since (their change
        stamps, one folder listing each, no file opened); the rows are fresh copies. For
        SQL whose answer depends on the ledger alone (no now(), no random()): what a page
        polls while DIO trains, beside the metrics that do change (the newest eval, the
        checkpoints), is read once per change, not once per poll."""
        key = (sql, tuple(params) if params is not None else ())
        stamp = tuple(self.table_generation(t) for t in tables_read(sql))
        with self._lock:
            kept = self._queries.get(key)
        if kept is not None and kept[0] == stamp:
            rows = kept[1]
        else:
            rows = self.query(sql, params)  # stamped before: a change meanwhile reads again
            with self._lock:
                if len(self._queries) >= QUERIES_KEPT and key not in self._queries:
                    self._queries.pop(next(iter(self._queries)))
                self._queries[key] = (stamp, rows)
        return [dict(r) for r in rows]

    def _run(self, con: duckdb.DuckDBPyConnection, sql: str,
             params: Iterable[Any] | None) -> list[dict[str, Any]]:
        cur = con.cursor()
        try:
            for attempt in range(5):
                before = self.generations()
                try:
                    rel = cur.execute(sql, list(params) if params is not None else None)
                    cols = [d[0] for d in rel.description or []]
                    rows = rel.fetchall()
                except duckdb.IOException:
                    if attempt == 4:
                        raise
                    continue
                if self.generations() == before:
                    break
            return [dict(zip(cols, row, strict=True)) for row in rows]
        finally:
            cur.close()

    # -- tail reads: what a poll needs, from the few segments that can hold it ---------
    def snapshot(self, table: str) -> list[SegmentStats]:
        """Min/max/non-null counts of every segment of the live generation. Listed through
        the resolved generation folder, whose files stay for OLD_GENERATION_GRACE_S even
        after a compaction swap, so the snapshot is consistent and readable. Stats are
        cached per file: segments never change."""
        return self._snapshot_of(self.current_dir(table).resolve())

    def _snapshot_of(self, gen: Path) -> list[SegmentStats]:
        # scandir, not glob: the pages ask this several times a second while DIO trains
        files = sorted(gen / e.name for e in os.scandir(gen) if e.name.endswith(".parquet"))
        cache = self._stats.setdefault(gen.parent, {})  # per table: one's sweep keeps the others'
        out = []
        for f in files:
            st = cache.get(f)
            if st is None:
                st = cache[f] = segment_stats(f)
            out.append(st)
        if len(cache) > 4 * len(files) + 64:  # forget merged-away segments
            keep = set(files)
            self._stats[gen.parent] = {k: v for k, v in cache.items() if k in keep}
        return out

    def max_value(self, table: str, column: str) -> Any:
        """max(column) from segment statistics alone (no row is read)."""
        his = [s.hi[column] for s in self.snapshot(table) if s.hi.get(column) is not None]
        return max(his) if his else None

    def tail(self, table: str, columns: str, limit: int, key: str = "step",
             notnull: str | None = None, kinds: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """`SELECT columns FROM table [WHERE notnull IS NOT NULL] [AND kind IN kinds]
        ORDER BY key DESC, ts DESC LIMIT limit`, exactly, reading only the segments whose
        `key` range can reach the top rows (and, with `kinds`, whose `kind` statistics
        can hold one of them): segments are tried newest-range first, and the answer is
        accepted when its last row still beats every segment left out. `key` is a number
        or a timestamp column (`ts`: the newest events).

        The answer is kept per query. Segments never change, and between compactions a
        table only gains them, so the top rows after new segments are the top rows of the
        kept answer and the new segments' rows: a page polling while DIO trains reads the
        one or two segments written since its last poll, not the hundreds of rows it
        already has. A compaction (segments gone) reads afresh."""
        kinds = tuple(sorted(set(kinds))) if kinds is not None else None
        for attempt in range(5):
            try:
                return self._tail_kept(table, columns, limit, key, notnull, kinds)
            except (duckdb.IOException, FileNotFoundError):
                if attempt == 4:
                    raise
        return []

    def _tail_kept(self, table: str, columns: str, limit: int, key: str,
                   notnull: str | None, kinds: tuple[str, ...] | None) -> list[dict[str, Any]]:
        col = notnull or key
        segs = [s for s in self.snapshot(table) if s.nonnull.get(col) and s.hi.get(key) is not None
                and (kinds is None or s.may_hold("kind", kinds))]
        live = frozenset(s.path for s in segs)
        q = (table, columns, limit, key, notnull, kinds)
        with self._lock:
            kept = self._tails.get(q)
        if kept is not None and kept[0] <= live:
            new = [s for s in segs if s.path not in kept[0]]
            rows = kept[1]
            if new:
                rows = top_rows(rows + self._read_tail(new, columns, limit, key, notnull, kinds),
                                limit)
        else:
            rows = self._tail(segs, columns, limit, key, notnull, kinds)
        with self._lock:
            if len(self._tails) >= TAILS_KEPT and q not in self._tails:
                self._tails.pop(next(iter(self._tails)))  # the oldest query
            self._tails[q] = (live, rows)
        return [{k: v for k, v in r.items() if k not in (TAIL_KEY, TAIL_TS)} for r in rows]

    def _tail(self, segs: list[SegmentStats], columns: str, limit: int, key: str,
              notnull: str | None, kinds: tuple[str, ...] | None) -> list[dict[str, Any]]:
        col = notnull or key
        segs = sorted(segs, key=lambda s: s.hi[key], reverse=True)
        want = max(1, limit)
        while True:
            chosen, n = [], 0
            for s in segs:
                if n >= want:
                    break
                chosen.append(s)
                n += s.nonnull[col]
            rest = segs[len(chosen):]
            bound = max((s.hi[key] for s in rest), default=None)
            if not chosen:
                return []
            rows = self._read_tail(chosen, columns, limit, key, notnull, kinds, bound)
            if bound is None or len(rows) >= limit:
                return rows
            # Not enough rows above what was left out: widen, by at least one more segment
            # (a bigger `want` alone could pick the same segments and read them again).
            want = max(want * 4, n + 1)

    def _read_tail(self, segs: list[SegmentStats], columns: str, limit: int, key: str,
                   notnull: str | None, kinds: tuple[str, ...] | None = None,
                   bound: Any = None) -> list[dict[str, Any]]:
        """The top rows of these segments (above `bound`), with their key and ts."""
        files = ", ".join("'" + s.path.as_posix().replace("'", "''") + "'" for s in segs)
        where = [f"{notnull} IS NOT NULL"] if notnull else []
        params: list[Any] = []
        if kinds is not None:
            where.append(f"kind IN ({', '.join('?' for _ in kinds)})" if kinds else "false")
            params += kinds
        if bound is not None:
            where.append(f"{key} > ?")  # a parameter: a number or a timestamp
            params.append(bound)
        sql = (f"SELECT {columns}, {key} AS {TAIL_KEY}, ts AS {TAIL_TS} "
               f"FROM read_parquet([{files}], union_by_name = true) "
               f"{'WHERE ' + ' AND '.join(where) if where else ''} "
               f"ORDER BY {key} DESC, ts DESC LIMIT {int(limit)}")
        with self._lock:
            cur = self._connection().cursor()
        try:
            rel = cur.execute(sql, params)
            names = [d[0] for d in rel.description or []]
            rows = [dict(zip(names, r, strict=True)) for r in rel.fetchall()]
        finally:
            cur.close()
        self.segments_read += len(segs)
        return rows

    def scalar(self, sql: str, params: Iterable[Any] | None = None) -> Any:
        rows = self.query(sql, params)
        return next(iter(rows[0].values())) if rows else None

    def close(self) -> None:
        for con in (self._conn, self._user_conn):
            if con is not None:
                con.close()
        self._conn = self._user_conn = None


class UnsafeQuery(ValueError):
    """A person's SQL that would write, read outside the ledger or attach a database."""


def check_read_only(sql: str) -> None:
    """Every statement must be a SELECT (DESCRIBE, SHOW, SUMMARIZE, FROM and VALUES parse
    as one); anything else names itself and the flag that allows it."""
    for stmt in duckdb.extract_statements(sql):
        if stmt.type != duckdb.StatementType.SELECT:
            kind = stmt.type.name
            raise UnsafeQuery(
                f"{kind} refused: `realm ledger sql` is read-only over the ledger by "
                f"default (SELECT only); --unsafe runs it with writes, files and ATTACH "
                f"allowed: {stmt.query.strip()[:80]!r}")


@dataclass(frozen=True)
class SegmentStats:
    path: Path
    rows: int
    hi: dict[str, Any]  # column -> max over the file (numbers and timestamps with statistics)
    nonnull: dict[str, int]  # column -> non-null values
    # column -> (min, max) of a string column; absent where a row group had no statistics
    spans: dict[str, tuple[str, str]] = field(default_factory=dict)

    def may_hold(self, column: str, values: Iterable[str]) -> bool:
        """Whether a row of this segment can have one of these values in `column`: False
        only when the column's statistics prove it (every value outside its min..max)."""
        if not self.nonnull.get(column, self.rows):
            return False  # no value at all in this column (an empty schema segment)
        span = self.spans.get(column)
        return span is None or any(span[0] <= v <= span[1] for v in values)


@functools.lru_cache(maxsize=1024)
def tables_read(sql: str) -> tuple[str, ...]:
    """The ledger tables a query reads: those it names, and those under the derived views
    it names, as DuckDB's parser finds them (a CTE or a column called `runs` is not the
    runs table). SQL it cannot parse falls back to every word that names a table: a query
    read again too often, never one left stale."""
    return tuple(sorted(_tables_under(sql, frozenset())))


def _tables_under(sql: str, views: frozenset[str]) -> set[str]:
    """`views`: those being expanded already (the champion view's body says 'champion')."""
    try:
        names = {n.lower() for n in duckdb.get_table_names(sql)}
    except duckdb.Error:
        names = set(re.findall(r"[a-z_][a-z0-9_]*", sql.lower()))
    found = {t for t in TABLES if t in names}
    for view, body in DERIVED_VIEWS.items():
        if view in names and view not in views:
            found |= _tables_under(body, views | {view})
    return found


def top_rows(rows: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """`ORDER BY key DESC, ts DESC LIMIT limit` of rows read by `_read_tail` (DuckDB puts
    a NULL key last in a descending order; so does this)."""
    def order(r: dict[str, Any]) -> tuple:
        k = r[TAIL_KEY]
        return (k is not None, k if k is not None else 0, r[TAIL_TS])
    return sorted(rows, key=order, reverse=True)[:max(0, limit)]


def segment_stats(path: Path) -> SegmentStats:
    meta = pq.read_metadata(path)
    hi: dict[str, Any] = {}
    nonnull: dict[str, int] = {}
    spans: dict[str, tuple[str, str]] = {}
    blind: set[str] = set()  # string columns with a row group of values but no min/max
    names = [meta.schema.column(i).name for i in range(meta.num_columns)]
    for g in range(meta.num_row_groups):
        rg = meta.row_group(g)
        for i, name in enumerate(names):
            col = rg.column(i)
            st = col.statistics
            if st is None or not st.has_null_count:
                nonnull[name] = nonnull.get(name, 0) + rg.num_rows  # unknown: assume values
                blind.add(name)
                continue
            nonnull[name] = nonnull.get(name, 0) + rg.num_rows - st.null_count
            if not st.has_min_max:
                if st.null_count < rg.num_rows:
                    blind.add(name)
                continue
            if isinstance(st.max, int | float | datetime) and not isinstance(st.max, bool):
                hi[name] = st.max if name not in hi else max(hi[name], st.max)
            elif isinstance(st.max, str):
                lo, top = spans.get(name, (st.min, st.max))
                spans[name] = (min(lo, st.min), max(top, st.max))
    for name in blind:  # a row group without statistics: its values could be anything
        spans.pop(name, None)
    return SegmentStats(path, meta.num_rows, hi, nonnull, spans)


class MetricBuffer:
    """The training thread's ledger rows, events and status files, written off its step.

    add() / event() / put_file() only queue (a list append, a dict entry); a background
    thread writes at most every `interval` s: the metric rows as one segment, then the
    events, then each file's newest content (atomic write). A file put `urgent` (the
    heartbeat of a save) wakes it at once. flush() returns when everything queued before
    it is on disk and raises what a write raised (a full disk fails the job as before),
    so a checkpoint published after a flush has all its rows. A kill -9 loses at most
    what was queued in the last `interval` (0.5 s) and not yet written.
    """

    def __init__(self, ledger: Ledger, interval: float = 0.5) -> None:
        self.ledger, self.interval = ledger, interval
        self._cv = threading.Condition()
        self._rows: list[dict[str, Any]] = []
        self._events: list[dict[str, Any]] = []
        self._files: dict[Path, object] = {}
        self._queued = self._written = 0  # counts of puts queued / on disk
        self._urgent = self._closing = False
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self.last_flush = time.monotonic()

    # -- the training thread's side -------------------------------------------------
    # Each store() names self._rows / _events / _files only once it holds the lock: the
    # writer swaps those for empty ones under the lock, and a list looked up before it
    # could be the batch being written (a row appended mid-write made its columns differ
    # in length: pyarrow's ArrowInvalid, seen under load).
    def add(self, row: dict[str, Any]) -> None:
        self._put(lambda: self._rows.append(row))

    def event(self, kind: str, message: str, data: str = "") -> None:
        item = {"kind": kind, "message": message, "data": data, "source": self.ledger.writer}
        self._put(lambda: self._events.append(item))

    def put_file(self, path: Path, data: object, urgent: bool = False) -> None:
        """`data` as JSON at `path` (atomically); only the newest content per path counts."""
        self._put(lambda: self._files.__setitem__(Path(path), data), urgent)

    def _put(self, store: Callable[[], None], urgent: bool = False) -> None:
        with self._cv:
            self._raise()
            store()
            self._queued += 1
            self._urgent = self._urgent or urgent
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="realm-metrics", daemon=True)
                self._thread.start()
            self._cv.notify()

    def flush(self) -> None:
        """Wait until everything queued so far is written; raise a write's error."""
        with self._cv:
            target = self._queued
            self._urgent = True
            self._cv.notify()
            while self._written < target and self._error is None and self._thread is not None:
                self._cv.wait()
            self._raise()

    def close(self, quiet: bool = False) -> None:
        """Write what is queued and stop the thread. quiet: never raise (another error
        is already on its way)."""
        try:
            self.flush()
        except Exception:
            if not quiet:
                raise
        finally:
            with self._cv:
                self._closing = True
                self._cv.notify()
                thread, self._thread = self._thread, None
            if thread is not None:
                thread.join(timeout=10)
            self._closing = False

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    # -- the writer thread ----------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._cv:
                while self._queued == self._written and not self._closing:
                    self._cv.wait()
                while not (self._urgent or self._closing):
                    left = self.last_flush + self.interval - time.monotonic()
                    if left <= 0:
                        break
                    self._cv.wait(left)
                if self._queued == self._written:
                    return  # closing, nothing left
                target, rows, events, files = self._queued, self._rows, self._events, self._files
                self._rows, self._events, self._files, self._urgent = [], [], {}, False
            try:
                self._write(rows, events, files)
            except BaseException as e:  # the training thread raises it at its next call
                with self._cv:
                    self._error = e
                    self._cv.notify_all()
                return
            with self._cv:
                self.last_flush = time.monotonic()
                self._written = target
                self._cv.notify_all()

    def _write(self, rows: list[dict], events: list[dict], files: dict[Path, object]) -> None:
        if rows:
            self.ledger.append("metrics", rows)
        if events:
            self.ledger.append("events", events)
        for path, data in files.items():
            atomic_write_json(path, data)


def remove_dead_temp_segments(paths: RealmPaths) -> int:
    """Temp segments and raw-slot links (`.<name>.<pid>.tmp`) whose writer died; never
    part of any view (the daemon removes them at start-up)."""
    n = 0
    for tmp in [*paths.segments.glob("*/gen-*/.*.tmp"), *paths.segments.glob("*/raw/.*.tmp")]:
        pid = tmp.name.rsplit(".", 2)[-2]
        if pid.isdigit() and not pid_alive(pid):
            tmp.unlink(missing_ok=True)
            n += 1
    return n


def json_data(data: dict[str, Any]) -> str:
    return json.dumps(data, default=str, sort_keys=True)
