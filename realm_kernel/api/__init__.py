"""`Realm`: the one Python API. Notebooks, the CLI, the REST handlers and the widgets
call it; none of them reaches past it into files or DuckDB (docs/architecture.md names
the CLI's process-launching commands, the exception).

`Realm` is a small root (the hero, the Tavern's poll, health, backups, the ledger's SQL
passthrough, the vault and the Oracle pool) and one sub-facade per thing a user works
with: `realm.quests`, `.skills`, `.checkpoints`, `.tasks`, `.training`, `.reports`,
`.settings`. Each sub-facade takes the realm's `Home` (paths + ledger + realm.toml), never
a `Realm`, and each method is a thin call into the layer that owns it. The errors the
layers above catch are exported here, so they need not import a lower layer for them."""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from realm_skills import SkillError

from ..evals import placement
from ..oracle.client import SharedOracle
from ..oracle.pool import ModelNotLoaded, OracleError, RemoteError
from ..quests.formats import QuestError
from ..quests.queue import QueueConflict
from ..services.exposure import exposure, refuse_without_login
from ..services.tavern_server import ExposureError, TavernServer
from ..services.tavern_server import parse as parse_tavern_options
from ..store import backup
from ..store.backup import BackupError
from ..store.changes import events_of, stamps
from ..store.checkpoints import UnknownCheckpoint
from ..store.config import ConfigError, RealmConfig
from ..store.home import Home
from ..store.hosts import HostRegistry
from ..store.ledger import Ledger
from ..store.paths import RealmPaths
from ..store.process import pid_alive
from ..store.schema import SCHEMA_VERSION
from ..store.status import WEAVER, read_status
from ..store.vault import ProtectedAssetError, VaultError, VaultKeeper
from .checkpoints import Checkpoints, vault_of
from .oracle import make_oracle
from .quests import Quests
from .remote_trainer import ReadOnlyRealm, RemoteTrainer, remote_trainer
from .reports import Reports, hero_of
from .settings import Settings
from .skills import Skills
from .tasks import Tasks
from .training import Training

# The Panel app's own server options (realm_widgets.app main) are checked by the same
# rule `realm tavern` uses, reached through here like everything else the widgets need.
__all__ = ["BackupError", "ConfigError", "ExposureError", "ModelNotLoaded", "OracleError",
           "ProtectedAssetError", "QuestError", "QueueConflict", "ReadOnlyRealm", "Realm", "RemoteError",
           "RemoteTrainer", "SkillError", "TavernServer", "UnknownCheckpoint", "VaultError", "events_of",
           "exposure", "parse_tavern_options", "refuse_without_login"]


class Realm:
    """The facade over one realm home."""

    def __init__(self, home: str | os.PathLike | None = None, writer: str = "api") -> None:
        self.home = Home(home, writer)
        self.quests = Quests(self.home)
        self.skills = Skills(self.home, lambda: self.oracle)
        self.checkpoints = Checkpoints(self.home)
        self.tasks = Tasks(self.home)
        self.training = Training(self.home)
        self.reports = Reports(self.home)
        self.settings = Settings(self.home)
        self._oracle: SharedOracle | None = None
        self._oracle_lock = threading.Lock()  # server threads may ask first at the same time

    @staticmethod
    def home_of(home: str | os.PathLike | None = None) -> Path:
        """The realm home `Realm(home)` opens (REALM_HOME or the default when None),
        without opening it."""
        return RealmPaths.at(home).home

    # -- shortcuts to the Home --------------------------------------------------------
    @property
    def paths(self) -> RealmPaths:
        return self.home.paths

    @property
    def ledger(self) -> Ledger:
        return self.home.ledger

    @property
    def config(self) -> RealmConfig:
        return self.home.config

    def safe_config(self) -> RealmConfig:
        """realm.toml, or the defaults while it is broken (status must still answer)."""
        return self.home.safe_config()

    @property
    def vault(self) -> VaultKeeper:
        return vault_of(self.home)

    def scan_vault(self) -> dict:
        """The vault scan task: the realm home, and in cluster mode the shared zones as a
        node offering the eval role reads them (evals/placement.py)."""
        return placement.scan_vault(self.home)

    @property
    def oracle(self) -> SharedOracle:
        """The realm's one Oracle pool ([oracle] in realm.toml), held by the pool owner
        (the Jupyter server extension) and reached over its API from every other process;
        this process's own pool when no owner runs (`status()` says which). And the
        inference hosts of hosts.toml. Chat by exact step; never another model."""
        with self._oracle_lock:
            if self._oracle is None:
                self._oracle = make_oracle(self.home)
            return self._oracle

    # -- what the Tavern polls ----------------------------------------------------------
    def hero(self) -> dict:
        return hero_of(self.home)

    def stamps(self, sources: Iterable[str]) -> dict[str, tuple]:
        """Change stamps of ledger tables and status files (store/changes.py): what a
        poller compares to learn, without a query, that a source changed."""
        return stamps(self.ledger, sources)

    def tavern_state(self) -> dict:
        """Everything the hero card and battle view show, in one JSON-able dict."""
        return {"hero": self.hero(), "battle": self.training.status(),
                "losses": self.reports.series("loss"), "events": self.reports.events(),
                "alarms": self.reports.alarm_steps()}

    def vault_marks(self) -> dict:
        """What the Vault page marks beside the checkpoints: protected steps (and why), the
        champion's step, the zones and the realm home's disk."""
        champ = self.checkpoints.champion()
        return {"protected": {str(k): v for k, v in self.vault.protected_steps().items()},
                "champion": champ["step"] if champ else None, "zones": self.vault.zones(),
                "disk": self.reports.disk_usage()}

    def health(self) -> dict:
        """Every service the Weaver supervises (as it last wrote them) and what it mended."""
        weaver = read_status(self.paths, WEAVER)
        weaving = pid_alive(weaver.get("pid")) if weaver else False
        services = [{**t, "alive": bool(weaving and t.get("alive") and pid_alive(t.get("pid")))}
                    for t in weaver.get("services", [])]
        return {"home": str(self.paths.home), "daemon": self.training.daemon(),
                "services": services, "mended": weaver.get("mended", []),
                "weaver": {"alive": weaving, "pid": weaver.get("pid"),
                           "updated": weaver.get("updated")},
                "ledger": {"schema_version": SCHEMA_VERSION}}

    @functools.cached_property
    def trainer(self) -> RemoteTrainer | None:
        """The trainer when hosts.toml puts it on another host (read-only, over its REST
        API), else None: this realm trains its own hero. Read once per `Realm`."""
        return remote_trainer(self.paths.home)

    def hosts(self) -> HostRegistry:
        """The host registry (hosts.toml): where the trainer and the inference hosts run."""
        return HostRegistry.load(self.paths.home)

    # -- the ledger and backups ---------------------------------------------------------
    def sql(self, query: str, unsafe: bool = False) -> list[dict]:
        """A person's SQL over the ledger: read-only unless `unsafe` (store/ledger.py)."""
        return self.ledger.user_query(query, unsafe)

    def backup(self, dest: str | os.PathLike | None = None, all_checkpoints: bool = False) -> dict:
        """A consistent snapshot (ledger, settings, the champion's weights; with
        all_checkpoints every checkpoint) into DEST, default backups/<time>/."""
        champ = self.checkpoints.champion()
        target = Path(dest) if dest else self.paths.home / "backups" / time.strftime("%Y%m%d-%H%M%S")
        return backup.snapshot(self.paths, target, "manual",
                               champion=Path(champ["path"]) if champ and champ.get("path") else None,
                               all_checkpoints=all_checkpoints)

    def restore(self, src: str | os.PathLike) -> dict:
        """Bring this realm home back from a backup (refused while a daemon runs)."""
        out = backup.restore(self.paths, Path(src))
        self.ledger.ensure_views()
        return out
