"""Module-scoped realms for the reliability suite: one realm home, one daemon and one
JupyterLab serve many cases (each case leaves the realm as it found it or is checked
in order), so the suite stays within its CI budget. The realm homes and labs come from
tests/helpers.py (make_home, start_lab)."""

from __future__ import annotations

import pytest

from ..helpers import Procs


@pytest.fixture(scope="module")
def module_procs(tmp_path_factory):
    p = Procs(tmp_path_factory.mktemp("logs"))
    yield p
    p.stop_all()
