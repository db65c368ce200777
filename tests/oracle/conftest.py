"""Fixtures of the Oracle's tests that outlive one pytest session in a process.

mutmut runs many pytest sessions in one process (its stats and clean runs), then forks a
child per mutant that runs one more: a session fixture is rebuilt in each, and dio-mini
takes a minute to build on a loaded 2-core machine. So dio-mini is built once per
process and kept while its folder is there; a cached folder that another pytest process
removed (pytest keeps three `pytest-N` folders per user and rotates the oldest away) is
built again instead of handed on (the trained realm of tests/oracle_helpers.py, cached
the same way, is dropped from its cache then, so it is trained again)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .. import oracle_helpers

_dio_mini: dict[str, Path] = {}


def still_there(path: Path | None) -> bool:
    return path is not None and (path / "config.json").exists()


@pytest.fixture(scope="session")
def dio_mini_dir(tmp_path_factory) -> Path:
    if not still_there(_dio_mini.get("path")):
        from realm_kernel.train.dio_mini import build_dio_mini
        _dio_mini["path"] = build_dio_mini(tmp_path_factory.mktemp("hero") / "dio-mini")
    return _dio_mini["path"]


@pytest.fixture(autouse=True)
def _trained_realm_still_there() -> None:
    """oracle_helpers.trained_home's cache names a folder of an earlier session: when it
    is gone, the next oracle_home trains it again instead of copying nothing."""
    home = oracle_helpers._built.get("home")
    if home is not None and not (home / "realm.toml").exists():
        del oracle_helpers._built["home"]
