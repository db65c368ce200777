"""`Home`: one realm home opened by one process — its paths, its ledger writer and its
realm.toml. Services (daemon, Task Master, eval queue) take a Home; the `Realm` facade holds
one (`realm.home`) and hands that down, never itself."""

from __future__ import annotations

import os

from .checkpoints import CheckpointLedger
from .config import ConfigError, RealmConfig, load_config
from .ledger import Ledger
from .paths import RealmPaths


class Home:
    def __init__(self, home: str | os.PathLike | None = None, writer: str = "api") -> None:
        self.paths = RealmPaths.at(home).ensure()
        self.ledger = Ledger(self.paths, writer)

    @property
    def config(self) -> RealmConfig:
        return load_config(self.paths.home)

    def safe_config(self) -> RealmConfig:
        """realm.toml, or the defaults while it is broken (status must still answer)."""
        try:
            return self.config
        except ConfigError:
            return RealmConfig()

    @property
    def checkpoints(self) -> CheckpointLedger:
        return CheckpointLedger(self.ledger)
