"""VaultKeeper: where every asset (checkpoint, model, data, config) lives, across zones.

The catalog is the ledger (`assets` and `zones` tables; a location's current state is its
latest row). A zone is the realm home ("local", always there) or another root: a local
folder or any fsspec URL (`file:///mnt/nas/realm`, `s3://bucket/realm`, `ssh://host/dir`).
An asset's path is relative to its zone's root and never leaves it, so an asset id from a
request can never name a file outside the realm home or a zone.

Ask the vault first: `ask_vault_first("checkpoint_1200")` finds the best location (local
before other zones, in the order they were added), copies it into the realm home if it is
only elsewhere, and returns the local path. Checkpoints the daemon saved are known without
a scan (the checkpoint ledger), as `checkpoint_{step}`.

Retention keeps the best N by a metric, the latest N and every Kth checkpoint (in save
order, counted over the whole ledger so the choice is stable as others are deleted), and
never the champion or the checkpoint in use; `retention(dry_run=True)` only says what it
would do.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from . import backup
from .checkpoints import TRAINING_STATE, CheckpointLedger, extract_step, latest_checkpoint
from .config import RealmConfig, RetentionConfig
from .confine import check_relative, confine
from .ledger import Ledger, json_data
from .paths import RealmPaths, checkpoint_complete, read_json
from .queries import champion_row
from .zone_copy import fingerprint, local_fs, move, open_zone
from .zones import ZoneRefused, check_zone

ASSET_TYPES = ("checkpoint", "model", "data", "config")
LOCAL = "local"
SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
DATA_SUFFIXES = (".jsonl", ".json", ".parquet")
CONFIG_SUFFIXES = (".toml", ".yaml", ".yml", ".json")


class VaultError(LookupError):
    """An unknown asset or zone, or a location that cannot be used."""


class ProtectedAssetError(ValueError):
    """Deleting or overwriting this asset would lose the champion or the weights in use."""


@dataclass(frozen=True)
class Location:
    zone: str
    path: str  # relative to the zone root, posix
    url: str  # absolute: a local path or a zone URL joined with path
    local: bool
    bytes: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LocateResult:
    asset_id: str
    found: bool
    type: str | None = None
    locations: list[Location] = field(default_factory=list)

    @property
    def best_location(self) -> Location | None:
        return self.locations[0] if self.locations else None

    def as_dict(self) -> dict[str, Any]:
        best = self.best_location
        return {"asset_id": self.asset_id, "found": self.found, "type": self.type,
                "best_location": best.as_dict() if best else None,
                "locations": [loc.as_dict() for loc in self.locations]}


def asset_id_for(type_: str, name: str, step: int | None = None) -> str:
    """checkpoint_{step}, model_{name}, data_{stem}, config_{stem} (the seed's ids)."""
    if type_ == "checkpoint" and step is not None:
        return f"checkpoint_{step}"
    stem = name if type_ == "model" else PurePosixPath(name).stem
    return f"{type_}_" + (re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._-") or "asset")


def check_id(value: str, what: str = "asset id") -> str:
    if not isinstance(value, str) or not SAFE_ID.match(value) or ".." in value:
        raise ValueError(f"bad {what} {value!r}: letters, digits, '.', '_' and '-' only")
    return value


def safe_relpath(path: str) -> str:
    """A zone-relative path that stays inside the zone (store.confine's rules)."""
    return check_relative(path, what="asset path", root="its zone")


def dir_bytes(path: Path) -> int:
    """Bytes under `path`; a file or folder deleted during the walk (a checkpoint being
    tidied up) counts as gone (os.walk skips what it cannot list)."""
    if path.is_file():
        return path.stat().st_size
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except FileNotFoundError:
                continue
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
    return total


def _is_url(url: str) -> bool:
    return "://" in url


# Checkpoints with an eval request the Task Master has not answered (evals/evalqueue.py).
AWAITING_EVAL = """
    SELECT DISTINCT CAST(json_extract(data, '$.step') AS BIGINT) AS step FROM events
    WHERE kind = 'eval_requested' AND json_extract(data, '$.step') IS NOT NULL
      AND json_extract_string(data, '$.checkpoint') NOT IN (
          SELECT checkpoint FROM evals WHERE checkpoint IS NOT NULL
          UNION ALL SELECT substr(key, 6) FROM events WHERE key LIKE 'eval:%')"""


# Checkpoints queued for the shared zone and not copied there yet (store/shipping.py):
# the latest row of each (asset, zone) says "pending".
AWAITING_SHIPPING = """
    SELECT step, zone, path FROM assets WHERE type = 'checkpoint'
    QUALIFY row_number() OVER (PARTITION BY asset_id, zone ORDER BY ts DESC) = 1
        AND status = 'pending'"""


class VaultKeeper:
    def __init__(self, paths: RealmPaths, ledger: Ledger, config: RealmConfig | None = None) -> None:
        self.paths, self.ledger = paths, ledger
        self.config = config or RealmConfig()

    # -- zones --------------------------------------------------------------------
    def zones(self) -> list[dict[str, Any]]:
        rows = self.ledger.query("SELECT zone_id, url, kind, detail, ts FROM zone_status ORDER BY ts")
        local = {"zone_id": LOCAL, "url": str(self.paths.home), "kind": "local",
                 "detail": "the realm home", "ts": None}
        return [local, *[r for r in rows if r["zone_id"] != LOCAL]]

    def zone(self, zone_id: str) -> dict[str, Any]:
        for z in self.zones():
            if z["zone_id"] == zone_id:
                rows = self.ledger.query(
                    "SELECT type, count(*) AS assets, coalesce(sum(bytes), 0) AS bytes "
                    "FROM asset_locations WHERE zone = ? GROUP BY type ORDER BY type", [zone_id])
                return {**z, "assets": rows}
        raise VaultError(f"no zone {zone_id!r}; zones: {[z['zone_id'] for z in self.zones()]}")

    def add_zone(self, zone_id: str, url: str, detail: str = "", *,
                 confirmed: bool = False) -> dict[str, Any]:
        """Add a zone. Only a person's explicit, confirmed action adds one (`realm vault
        add-zone`, which asks, or a call with confirmed=True): the REST route and the pages
        never pass it, so a token alone cannot point the vault somewhere new."""
        check_id(zone_id, "zone id")
        if zone_id == LOCAL:
            raise ValueError("'local' is the realm home and always exists")
        kind = check_zone(url, self.paths.home)
        if kind == "fsspec":
            import fsspec
            protocol = url.split("://", 1)[0]
            try:
                fsspec.get_filesystem_class(protocol)
            except (ValueError, ImportError) as e:
                raise ValueError(f"zone url {url!r}: {e}") from e
        if not confirmed:
            raise ZoneRefused(f"zone {zone_id!r} not added: a zone is added by a person, with "
                              "`realm vault add-zone` (it asks to confirm), not through this route")
        self.ledger.append("zones", [{"zone_id": zone_id, "url": url, "kind": kind,
                                      "status": "active", "detail": detail}])
        self.ledger.event("zone_added", f"Zone {zone_id} joins the vault ({url})")
        return {"zone_id": zone_id, "url": url, "kind": kind, "detail": detail}

    def remove_zone(self, zone_id: str) -> None:
        z = self.zone(zone_id)
        if zone_id == LOCAL:
            raise ValueError("the local zone cannot be removed")
        self.ledger.append("zones", [{"zone_id": zone_id, "url": z["url"], "kind": z["kind"],
                                      "status": "removed"}])

    def zone_fs(self, zone_id: str, fresh: bool = False, **options: Any):
        """(fsspec filesystem, root path in it) for a zone. fsspec caches one instance
        per URL; `fresh` makes a new one (a connection that died with its server stays
        dead in the cached instance). `options` go to the filesystem (a timeout)."""
        return open_zone(self.zone_url(zone_id), fresh, **options)

    def zone_url(self, zone_id: str) -> str:
        for z in self.zones():
            if z["zone_id"] == zone_id:
                if zone_id != LOCAL:  # a zone recorded before today's rules gets no pass
                    check_zone(z["url"], self.paths.home)
                return z["url"]
        raise VaultError(f"no zone {zone_id!r}")

    def _location(self, zone: str, rel: str, nbytes: int | None = None) -> Location:
        url = self.zone_url(zone)
        full = (str(Path(url) / rel) if not _is_url(url) else url.rstrip("/") + "/" + rel)
        return Location(zone=zone, path=rel, url=full, local=zone == LOCAL, bytes=nbytes)

    def local_path(self, rel: str) -> Path:
        return confine(self.paths.home, safe_relpath(rel), what="asset path")

    # -- catalog ------------------------------------------------------------------
    def record(self, asset_id: str, type_: str, name: str, zone: str, rel: str,
                nbytes: int | None, step: int | None, status: str = "present",
                detail: dict | None = None) -> None:
        self.ledger.append("assets", [{"asset_id": asset_id, "type": type_, "name": name,
                                       "zone": zone, "path": rel, "bytes": nbytes, "step": step,
                                       "status": status,
                                       "detail": json_data(detail) if detail else None}])

    def register(self, path: str, type: str | None = None, asset_id: str | None = None,
                 zone: str = LOCAL, detail: dict | None = None) -> dict[str, Any]:
        """Catalog one asset at `path` (relative to the zone root; for the local zone an
        absolute path inside the realm home is fine too)."""
        self.zone(zone)
        if zone == LOCAL:
            p = confine(self.paths.home, path, what="registered path")
            path = p.relative_to(self.paths.home.resolve()).as_posix()
        rel = safe_relpath(path)
        name = PurePosixPath(rel).name
        if zone == LOCAL:
            full = self.local_path(rel)
            if not full.exists():
                raise VaultError(f"nothing at {rel!r} in the realm home")
            nbytes = dir_bytes(full)
        else:
            fs, root = self.zone_fs(zone)
            if not fs.exists(f"{root}/{rel}"):
                raise VaultError(f"nothing at {rel!r} in zone {zone!r}")
            nbytes = int(fs.du(f"{root}/{rel}"))
        type_ = type or guess_type(rel)
        if type_ not in ASSET_TYPES:
            raise ValueError(f"unknown asset type {type_!r}; expected one of {ASSET_TYPES}")
        step = extract_step(name) if type_ == "checkpoint" else None
        asset_id = check_id(asset_id or asset_id_for(type_, name, step))
        self.record(asset_id, type_, name, zone, rel, nbytes, step, detail=detail)
        return {"asset_id": asset_id, "type": type_, "name": name,
                "location": self._location(zone, rel, nbytes).as_dict()}

    def scan(self, zone: str = LOCAL) -> dict[str, Any]:
        """Discover checkpoints, models, data and configs in a zone; locations that are
        gone are marked deleted."""
        return self.record_scan(zone, list(discover_local(self.paths.home) if zone == LOCAL
                                           else discover_fs(*self.zone_fs(zone))))

    def shared_zone_urls(self) -> dict[str, str]:
        """Every zone but the realm home, by id: its URL (each checked by zone_url)."""
        return {z["zone_id"]: self.zone_url(z["zone_id"]) for z in self.zones() if z["zone_id"] != LOCAL}

    def record_scan(self, zone: str, found: Sequence[Sequence[Any]]) -> dict[str, Any]:
        """A zone's catalogue from what a discovery found there, (type, relative path,
        bytes) each, wherever it ran: present rows, and a deleted row for each location
        the catalogue had that was not found."""
        before = {r["asset_id"]: r for r in self.ledger.query(
            "SELECT asset_id, type, name, path FROM asset_locations WHERE zone = ?", [zone])}
        rows, seen = [], set()
        for type_, rel, nbytes in found:
            name = PurePosixPath(rel).name
            step = extract_step(name) if type_ == "checkpoint" else None
            aid = asset_id_for(type_, name, step)
            if aid in seen:
                continue
            seen.add(aid)
            rows.append({"asset_id": aid, "type": type_, "name": name, "zone": zone, "path": rel,
                         "bytes": nbytes, "step": step, "status": "present"})
        rows += [{**r, "zone": zone, "status": "deleted"} for aid, r in before.items()
                 if aid not in seen]
        if rows:
            self.ledger.append("assets", rows)
        counts: dict[str, int] = {}
        for r in rows:
            if r["status"] == "present":
                counts[r["type"]] = counts.get(r["type"], 0) + 1
        self.ledger.event("vault_scan", f"Scanned zone {zone}: {sum(counts.values())} assets",
                          json_data(counts))
        return {"zone": zone, "found": counts,
                "gone": sorted(aid for aid in before if aid not in seen)}

    def _catalog(self, asset_id: str) -> list[dict[str, Any]]:
        rows = self.ledger.query("SELECT * FROM asset_locations WHERE asset_id = ?", [asset_id])
        step = extract_step(asset_id) if asset_id.startswith("checkpoint_") else None
        if step is not None and not any(r["zone"] == LOCAL for r in rows):
            rec = CheckpointLedger(self.ledger).get(step)
            if rec and checkpoint_complete(Path(rec.path)) and Path(rec.path).is_relative_to(
                    self.paths.home):
                rel = Path(rec.path).relative_to(self.paths.home).as_posix()
                rows.append({"asset_id": asset_id, "type": "checkpoint", "name": rec.name,
                             "zone": LOCAL, "path": rel, "bytes": dir_bytes(Path(rec.path)),
                             "step": step})
        return rows

    def locate(self, asset_id: str) -> LocateResult:
        check_id(asset_id)
        order = {z["zone_id"]: i for i, z in enumerate(self.zones())}
        locations, type_ = [], None
        for r in self._catalog(asset_id):
            if r["zone"] not in order:
                continue  # its zone was removed
            if r["zone"] == LOCAL and not self.local_path(r["path"]).exists():
                continue  # deleted behind the vault's back
            type_ = r["type"]
            locations.append(self._location(r["zone"], r["path"], r.get("bytes")))
        locations.sort(key=lambda loc: order[loc.zone])
        return LocateResult(asset_id, bool(locations), type_, locations)

    def asset(self, asset_id: str) -> dict[str, Any]:
        found = self.locate(asset_id)
        if not found.found:
            raise VaultError(f"no asset {asset_id!r} in the vault")
        history = self.ledger.query(
            "SELECT ts, zone, path, bytes, status FROM assets WHERE asset_id = ? ORDER BY ts",
            [asset_id])
        out = {**found.as_dict(), "history": history}
        step = extract_step(asset_id) if found.type == "checkpoint" else None
        if step is not None:
            rec = CheckpointLedger(self.ledger).get(step)
            out["checkpoint"] = rec.as_dict() if rec else None
        return out

    def search(self, type: str | None = None, query: str | None = None) -> list[dict[str, Any]]:
        if type is not None and type not in ASSET_TYPES:
            raise ValueError(f"unknown asset type {type!r}; expected one of {ASSET_TYPES}")
        sql = ("SELECT asset_id, any_value(type) AS type, any_value(name) AS name, "
               "max(step) AS step, list(zone ORDER BY zone) AS zones, max(bytes) AS bytes "
               "FROM asset_locations WHERE (? IS NULL OR type = ?) "
               "AND (? IS NULL OR contains(lower(asset_id), lower(?))) "
               "GROUP BY asset_id ORDER BY type, step DESC NULLS LAST, asset_id")
        return self.ledger.query(sql, [type, type, query, query])

    def checkpoints(self) -> list[dict[str, Any]]:
        """Every checkpoint in the checkpoint ledger with where it lives now."""
        where = {r["asset_id"]: r["zones"] for r in self.search("checkpoint")}
        out = []
        for rec in CheckpointLedger(self.ledger).list():
            aid = f"checkpoint_{rec.step}"
            zones = list(where.get(aid, []))
            if LOCAL not in zones and Path(rec.path).is_dir():
                zones.insert(0, LOCAL)
            out.append({"asset_id": aid, **rec.as_dict(), "zones": zones})
        return out

    def stats(self) -> dict[str, Any]:
        by_type = self.ledger.query(
            "SELECT type, count(DISTINCT asset_id) AS assets, count(*) AS locations, "
            "coalesce(sum(bytes), 0) AS bytes FROM asset_locations GROUP BY type ORDER BY type")
        by_zone = self.ledger.query(
            "SELECT zone, count(*) AS assets, coalesce(sum(bytes), 0) AS bytes "
            "FROM asset_locations GROUP BY zone ORDER BY zone")
        return {"zones": len(self.zones()), "by_type": by_type, "by_zone": by_zone,
                "assets": sum(r["assets"] for r in by_type),
                "checkpoints_in_ledger": self.ledger.scalar(
                    "SELECT count(*) FROM checkpoint_ledger")}

    # -- moving things ------------------------------------------------------------
    def fetch(self, asset_id: str) -> Path:
        """The asset's local path, copying it into the realm home from the best zone
        that has it when it is not here yet."""
        found = self.locate(asset_id)
        if not found.found:
            raise VaultError(f"no asset {asset_id!r} in the vault")
        best = found.best_location
        if best.local:
            return self.local_path(best.path)
        self._copy(best.zone, LOCAL, best.path)
        dest = self.local_path(best.path)
        self.record(asset_id, found.type, PurePosixPath(best.path).name, LOCAL, best.path,
                     dir_bytes(dest), extract_step(asset_id) if found.type == "checkpoint" else None,
                     detail={"fetched_from": best.zone})
        self.ledger.event("vault_fetch", f"Fetched {asset_id} from {best.zone}")
        return dest

    def transfer(self, asset_id: str, to_zone: str, from_zone: str | None = None) -> Location:
        found = self.locate(asset_id)
        if not found.found:
            raise VaultError(f"no asset {asset_id!r} in the vault")
        self.zone(to_zone)
        src = next((loc for loc in found.locations if from_zone in (None, loc.zone)), None)
        if src is None:
            raise VaultError(f"{asset_id!r} is not in zone {from_zone!r}")
        if src.zone != to_zone:
            self._copy(src.zone, to_zone, src.path)
        self.record(asset_id, found.type, PurePosixPath(src.path).name, to_zone, src.path,
                     src.bytes, extract_step(asset_id) if found.type == "checkpoint" else None,
                     detail={"transferred_from": src.zone})
        self.ledger.event("vault_transfer", f"{asset_id}: {src.zone} -> {to_zone}")
        return self._location(to_zone, src.path, src.bytes)

    def _copy(self, src_zone: str, dst_zone: str, rel: str) -> None:
        """Copy one asset between zones. It lands under a temporary name and is renamed
        into place, so a half-copied asset is never found."""
        rel = safe_relpath(rel)
        staging = self.paths.home / ".vault-tmp" / f"{os.getpid()}-{time.time_ns()}"
        staging.mkdir(parents=True)
        try:
            local_src = self.local_path(rel) if src_zone == LOCAL else None
            if local_src is None:
                fs, root = self.zone_fs(src_zone)
                fs.get(f"{root}/{rel}", str(staging / "x"), recursive=True)
                local_src = staging / "x"
            if dst_zone == LOCAL:
                dest = self.local_path(rel)
                if dest.exists():
                    _same_or_refuse(local_fs(), str(local_src), local_fs(), str(dest), rel, dst_zone)
                    return
                dest.parent.mkdir(parents=True, exist_ok=True)
                part = dest.with_name(f".{dest.name}.partial")
                shutil.rmtree(part, ignore_errors=True)
                if local_src.is_dir():
                    shutil.copytree(local_src, part)
                else:
                    shutil.copy2(local_src, part)
                os.replace(part, dest)
            else:
                fs, root = self.zone_fs(dst_zone)
                if fs.exists(f"{root}/{rel}"):
                    _same_or_refuse(local_fs(), str(local_src), fs, f"{root}/{rel}", rel, dst_zone)
                    return
                part = f"{root}/{rel}.partial"
                fs.put(str(local_src), part, recursive=local_src.is_dir())
                move(fs, part, f"{root}/{rel}")
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    # -- champion and retention ---------------------------------------------------------
    def protected_steps(self, retention: bool = False) -> dict[int, str]:
        """Checkpoints nothing deletes: the champion, the one in use; for retention also
        those awaiting their eval (a person may still delete one of those by hand)."""
        out: dict[int, str] = {}
        champ = champion_row(self.ledger)
        if champ and champ["step"] is not None:
            out[int(champ["step"])] = "champion"
        latest = latest_checkpoint(self.ledger)
        if latest:
            out.setdefault(latest[0], "in use (the hero's current weights)")
        # Retention keeps a checkpoint waiting for its eval until the Task Master scored it.
        for row in self.ledger.query(AWAITING_EVAL) if retention else ():
            out.setdefault(int(row["step"]), "awaiting its eval")
        # Retention keeps a checkpoint waiting to be shipped to the shared zone
        # (store/shipping.py): while that zone is unreachable its only copy is here.
        for row in self.ledger.query(AWAITING_SHIPPING) if retention else ():
            out.setdefault(int(row["step"]), f"awaiting shipping to zone {row['zone']}")
        status = read_json(self.paths.status / "training.json", {}) or {}
        if status.get("last_checkpoint"):
            step = extract_step(status["last_checkpoint"])
            if step is not None:
                out.setdefault(step, "in use (the battle in progress)")
        return out

    def _paths_in_use(self) -> set[Path]:
        """The exact folders the battle in progress and the champion name (protection by
        step cannot tell two saves of one step apart)."""
        named = [(read_json(self.paths.status / "training.json", {}) or {}).get("last_checkpoint")]
        named.append((champion_row(self.ledger) or {}).get("path"))
        return {Path(p).resolve() for p in named if p}

    def retention_plan(self, policy: RetentionConfig | None = None,
                       zone: str = LOCAL) -> dict[str, Any]:
        """What `policy` keeps and deletes among the checkpoints in `zone` (the realm home
        by default; another zone's are its catalogued copies)."""
        policy = policy or self.config.retention
        ledger = CheckpointLedger(self.ledger)
        every = ledger.list()[::-1]  # save order, the whole history
        if zone == LOCAL:
            present = [r for r in every if Path(r.path).is_dir()]
        else:
            held = {int(r["step"]): r for r in self.ledger.query(
                "SELECT step, path, bytes FROM asset_locations WHERE zone = ? "
                "AND type = 'checkpoint' AND step IS NOT NULL", [zone])}
            present = [r for r in every if r.step in held]
        reasons: dict[int, list[str]] = {}

        def keep(step: int, why: str) -> None:
            reasons.setdefault(step, []).append(why)

        for step, why in self.protected_steps(retention=True).items():
            keep(step, why)
        for r in present[-policy.keep_latest:]:
            keep(r.step, "latest")
        metric = {"loss": "loss", "val_loss": "val_loss"}.get(policy.metric)
        if policy.keep_best and metric:
            scored = sorted((r for r in present if getattr(r, metric) is not None),
                            key=lambda r: getattr(r, metric))
            for r in scored[:policy.keep_best]:
                keep(r.step, f"best {metric}")
        elif policy.keep_best:
            for rec in self.ledger.query(
                    "SELECT step, avg(accuracy) AS a FROM evals GROUP BY step ORDER BY a DESC"):
                if any(r.step == rec["step"] for r in present):
                    keep(rec["step"], "best accuracy")
                    if sum("best accuracy" in v for v in reasons.values()) >= policy.keep_best:
                        break
        if policy.keep_every:
            k = every_kth(len(every), policy.keep_every, policy.keep_every_max)
            for i, r in enumerate(every):
                if i % k == 0:
                    keep(r.step, f"every {k}th")
        keep_rows = [{"step": r.step, "name": r.name, "reasons": reasons[r.step]}
                     for r in present if r.step in reasons]
        delete_rows = [{"step": r.step, "name": r.name, "path": r.path,
                        "bytes": dir_bytes(Path(r.path))} if zone == LOCAL else
                       {"step": r.step, "name": r.name, "path": held[r.step]["path"],
                        "bytes": held[r.step]["bytes"]}
                       for r in present if r.step not in reasons]
        if zone == LOCAL:
            # A step saved again under another folder leaves the older folder out of the
            # view: without this it would never be tidied (nor counted by any rule).
            in_use = self._paths_in_use()
            delete_rows += [{"step": r.step, "name": r.name, "path": r.path, "superseded": True,
                             "bytes": dir_bytes(Path(r.path))}
                            for r in ledger.superseded()
                            if Path(r.path).is_dir() and Path(r.path).resolve() not in in_use]
        return {"policy": policy.model_dump(), "keep": keep_rows, "delete": delete_rows,
                "freed_bytes": sum(d["bytes"] for d in delete_rows)}

    def retention(self, dry_run: bool = True, policy: RetentionConfig | None = None,
                  snapshot: bool = True) -> dict[str, Any]:
        """`snapshot=False` for the automatic runs after each save: they only delete
        checkpoint files (which a ledger snapshot would not hold anyway) and append rows."""
        plan = {**self.retention_plan(policy), "dry_run": dry_run}
        if dry_run:
            return plan
        protected = self.protected_steps(retention=True)  # asked again: the battle moves on
        if plan["delete"] and snapshot:
            backup.auto_snapshot(self.paths, "retention")
        done = []
        for d in plan["delete"]:
            path = Path(d["path"])
            if d["step"] in protected and not d.get("superseded"):
                continue
            where = path.resolve()
            if not where.is_relative_to(self.paths.checkpoints) or where in self._paths_in_use():
                continue
            self._remove_checkpoint(d["step"], path, d["bytes"], by="retention")
            done.append(d)
        plan["delete"] = done
        plan["freed_bytes"] = sum(d["bytes"] for d in done)
        if not done and not snapshot:
            return plan  # the automatic run after each save records only what it removed
        self.ledger.event("retention", f"Retention removed {len(done)} checkpoint(s)",
                          json.dumps({"steps": [d["step"] for d in done]}))
        return plan

    def make_room(self, need: int, budget: int, policy: RetentionConfig | None = None) -> dict[str, Any]:
        """Delete the checkpoints retention values least until `need` more bytes fit in
        `budget` bytes of checkpoints: first those no rule keeps, then every-Kth ones
        (oldest first), then the best (worst first), then the latest (oldest first).
        Never the champion, the checkpoint in use or one awaiting its eval. Says whether
        the bytes now fit."""
        used = dir_bytes(self.paths.checkpoints)
        plan = self.retention_plan(policy)
        protected = self.protected_steps(retention=True)
        reasons = {k["step"]: k["reasons"] for k in plan["keep"]}
        rows = [*plan["delete"], *({"step": k["step"], "name": k["name"]} for k in plan["keep"])]

        def worth(row: dict) -> tuple[int, float]:
            why = " ".join(reasons.get(row["step"], []))
            rank = 3 if "latest" in why else 2 if "best" in why else 1 if why else 0
            return rank, row["step"]

        freed: list[int] = []
        for row in sorted(rows, key=worth):
            if used + need <= budget:
                break
            if row["step"] in protected and not row.get("superseded"):
                continue
            rec = None if row.get("path") else CheckpointLedger(self.ledger).get(row["step"])
            path = Path(row["path"]) if row.get("path") else Path(rec.path) if rec else None
            if path is None or not path.is_dir() or not path.resolve().is_relative_to(self.paths.checkpoints):
                continue
            nbytes = dir_bytes(path)
            self._remove_checkpoint(row["step"], path, nbytes, by="disk budget")
            used -= nbytes
            freed.append(row["step"])
        if freed:
            self.ledger.event("retention", f"The disk budget removed {len(freed)} checkpoint(s)",
                              json.dumps({"steps": freed, "budget_bytes": budget}))
        return {"fits": used + need <= budget, "used_bytes": used, "need_bytes": need,
                "budget_bytes": budget, "deleted": freed}

    def _remove_checkpoint(self, step: int, path: Path, nbytes: int | None, by: str) -> None:
        # Rename first: a checkpoint is either whole or gone, never half-deleted.
        trash = path.with_name(f".deleting-{path.name}")
        os.replace(path, trash)
        shutil.rmtree(trash, ignore_errors=True)
        rel = path.relative_to(self.paths.home).as_posix()
        self.record(f"checkpoint_{step}", "checkpoint", path.name, LOCAL, rel, nbytes, step,
                     status="deleted", detail={"by": by})

    def _local_checkpoint(self, step: int) -> tuple[Any, Path]:
        """The ledger record and on-disk directory of a checkpoint, checked to be inside
        the realm's checkpoints folder."""
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"checkpoint step must be a non-negative integer, got {step!r}")
        rec = CheckpointLedger(self.ledger).get(step)
        if rec is None:
            raise VaultError(f"no checkpoint at step {step} in the ledger")
        path = Path(rec.path)
        if not path.resolve().is_relative_to(self.paths.checkpoints.resolve()):
            raise VaultError(f"checkpoint {rec.name} lives outside {self.paths.checkpoints}; "
                             "the vault only manages checkpoints in the realm home")
        if not path.is_dir():
            raise VaultError(f"checkpoint {rec.name} (step {step}) is not on disk")
        return rec, path

    def delete_checkpoint(self, step: int, by: str = "user") -> dict[str, Any]:
        """Delete one checkpoint from the realm home. The champion and the checkpoint in
        use are refused (ProtectedAssetError names which); the ledger keeps its history."""
        rec, path = self._local_checkpoint(step)
        why = self.protected_steps().get(rec.step)
        if why:
            raise ProtectedAssetError(f"checkpoint {rec.name} (step {rec.step}) is protected: {why}")
        nbytes = dir_bytes(path)
        self._remove_checkpoint(rec.step, path, nbytes, by=by)
        self.ledger.event("checkpoint_deleted", f"Checkpoint {rec.name} deleted",
                          json.dumps({"step": rec.step, "name": rec.name, "by": by,
                                      "bytes": nbytes}))
        return {"ok": True, "step": rec.step, "name": rec.name, "freed_bytes": nbytes}

    def export_checkpoint(self, step: int, dest: str | os.PathLike,
                          merge_with: Any = None) -> Path:
        """Copy a checkpoint as a clean HF directory (config, weights, tokenizer; no
        optimizer, scheduler, RNG or trainer state) to `dest`, which must not exist yet and
        must lie under <realm home>/exports (a relative `dest` is taken inside it; every
        surface, REST, the Vault page, the notebook and the CLI, comes through here).
        A LoRA adapter is copied as an adapter (its adapter_config.json names the base),
        or, given `merge_with(adapter, dest)`, merged into its base as a full model.
        It is written under a temporary name and renamed, so a half export is never seen."""
        rec, path = self._local_checkpoint(step)
        dest = confine(self.paths.exports, dest, what="export destination")
        if dest.exists():
            raise FileExistsError(f"export destination {dest} already exists")
        if dest.is_relative_to(self.paths.checkpoints.resolve()) or dest.is_relative_to(
                self.paths.models.resolve()):
            raise ValueError(f"export destination {dest} is inside the realm's checkpoints "
                             "or models; choose another folder")
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(f".{dest.name}.partial")
        shutil.rmtree(part, ignore_errors=True)
        adapter = (path / "adapter_config.json").is_file()
        if adapter and merge_with is not None:
            merge_with(path, part)
        else:
            shutil.copytree(path, part, ignore=shutil.ignore_patterns(*TRAINING_STATE))
        if not ((part / "config.json").is_file() or adapter):
            shutil.rmtree(part, ignore_errors=True)
            raise VaultError(f"checkpoint {rec.name} has no config.json; it is not an HF model")
        os.replace(part, dest)
        self.ledger.event("checkpoint_exported", f"Checkpoint {rec.name} exported to {dest}",
                          json.dumps({"step": rec.step, "name": rec.name, "dest": str(dest)}))
        return dest


def _same_or_refuse(src_fs, src: str, dst_fs, dst: str, rel: str, zone: str) -> None:
    """A copy onto something already there: the same bytes are a no-op; anything else is
    refused, never overwritten (it may be another model that happens to share the name)."""
    if fingerprint(src_fs, src) != fingerprint(dst_fs, dst):
        raise FileExistsError(f"zone {zone!r} already holds a different {rel!r}; nothing "
                              "was overwritten (remove or rename it there first)")


def every_kth(saved: int, k: int, most: int) -> int:
    """The K of "keep every Kth" for a history of `saved` checkpoints: K doubles until at
    most `most` are kept, so the kept ones stay spread over the run and never grow without
    bound (each doubling keeps a subset of what the last one kept)."""
    while -(-saved // k) > most:
        k *= 2
    return k


def guess_type(rel: str) -> str:
    p = PurePosixPath(rel)
    if extract_step(p.name) is not None:
        return "checkpoint"
    if p.parts and p.parts[0] == "models":
        return "model"
    if p.suffix in DATA_SUFFIXES and p.name != "config.json":
        return "data"
    if p.suffix in CONFIG_SUFFIXES:
        return "config"
    return "model"


def discover_local(home: Path):
    """(type, relative path, bytes) of the assets in a realm home layout."""
    ck = home / "checkpoints"
    for d in sorted(ck.glob("checkpoint-*")) if ck.is_dir() else ():
        if d.is_dir() and checkpoint_complete(d) and extract_step(d.name) is not None:
            yield "checkpoint", d.relative_to(home).as_posix(), dir_bytes(d)
    models = home / "models"
    for d in sorted(models.iterdir()) if models.is_dir() else ():
        if d.is_dir() and (d / "config.json").exists():
            yield "model", d.relative_to(home).as_posix(), dir_bytes(d)
    for folder in (home / "data", *(home / "queue" / s for s in
                                    ("high", "normal", "low", "recently_completed"))):
        for f in sorted(folder.rglob("*")) if folder.is_dir() else ():
            if f.is_file() and f.suffix in DATA_SUFFIXES and not f.name.startswith("."):
                yield "data", f.relative_to(home).as_posix(), f.stat().st_size
    for f in [home / "realm.toml", home / "hosts.toml", home / "hosts.json",
              *sorted((home / "configs").glob("*"))]:
        if f.is_file() and f.suffix in CONFIG_SUFFIXES:
            yield "config", f.relative_to(home).as_posix(), f.stat().st_size


def discover_zones(urls: dict[str, str]) -> dict[str, dict[str, Any]]:
    """What `discover_fs` finds in each zone (id -> URL) seen from this machine: its
    (type, path, bytes) list under "found", or under "error" why it could not be read.
    Reads only: a cluster node runs it and the caller records the catalogue."""
    out: dict[str, dict[str, Any]] = {}
    for zone, url in urls.items():
        try:
            out[zone] = {"found": [list(f) for f in discover_fs(*open_zone(url, fresh=True))]}
        except Exception as e:  # an unreachable zone is a finding, never a failed scan
            out[zone] = {"error": f"{type(e).__name__}: {e}"}
    return out


def discover_fs(fs, root: str):
    """The same discovery in another zone, through fsspec."""
    def rel(p: str) -> str:
        return p[len(root):].lstrip("/") if p.startswith(root) else p

    for folder, kind in (("checkpoints", "checkpoint"), ("models", "model")):
        base = f"{root}/{folder}"
        if not fs.exists(base):
            continue
        for entry in fs.ls(base, detail=True):
            name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
            if entry["type"] == "directory" and fs.exists(f"{entry['name']}/config.json") and (
                    kind == "model" or extract_step(name) is not None):
                yield kind, rel(entry["name"].rstrip("/")), int(fs.du(entry["name"]))
    for folder in ("data", "queue/high", "queue/normal", "queue/low", "queue/recently_completed"):
        base = f"{root}/{folder}"
        if fs.exists(base):
            for p, info in sorted(fs.find(base, detail=True).items()):
                name = p.rsplit("/", 1)[-1]
                if name.endswith(DATA_SUFFIXES) and not name.startswith("."):
                    yield "data", rel(p), int(info.get("size") or 0)
    for name in ("realm.toml", "hosts.toml", "hosts.json"):
        if fs.exists(f"{root}/{name}"):
            yield "config", name, int(fs.size(f"{root}/{name}"))


def ask_vault_first(asset_id: str, fallback: str | os.PathLike | None = None,
                    home: str | os.PathLike | None = None) -> Path:
    """The local path of an asset, fetched into the realm home if it is only in another
    zone; `fallback` when the vault does not know it (an error when there is none)."""
    from .config import load_config
    paths = RealmPaths.at(home)
    keeper = VaultKeeper(paths, Ledger(paths, "vault"), load_config(paths.home))
    try:
        return keeper.fetch(asset_id)
    except VaultError:
        if fallback is None:
            raise
        return Path(os.path.expandvars(str(fallback))).expanduser()
