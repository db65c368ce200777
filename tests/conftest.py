"""Shared fixtures, thin wrappers over tests/helpers.py: a temp realm home with dio-mini,
real subprocesses, headless Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from realm_kernel.store.paths import RealmPaths

from .helpers import CHROMIUM, CHROMIUM_ARGS, Procs, make_home, require_chromium

# The longest files start first, so the xdist workers (`make test`) finish together
# instead of one running the wheel test alone at the end.
LONGEST_FIRST = ("test_wheel.py", "test_taskmaster.py", "test_crash_faults.py")


def pytest_collection_modifyitems(config, items):
    """The longest files first; `gpu` tests need a CUDA device: skipped, with the reason,
    on any other machine."""
    items.sort(key=lambda item: next((i for i, name in enumerate(LONGEST_FIRST)
                                      if item.path.name == name), len(LONGEST_FIRST)))
    import torch
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (run by bench/gpu_check.sh on a GPU machine)")
    for item in items:
        if item.get_closest_marker("gpu"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def dio_mini_dir(tmp_path_factory) -> Path:
    from realm_kernel.train.dio_mini import build_dio_mini
    return build_dio_mini(tmp_path_factory.mktemp("hero") / "dio-mini")


@pytest.fixture
def realm_home(tmp_path, dio_mini_dir, monkeypatch) -> RealmPaths:
    paths = make_home(tmp_path / "realm", dio_mini_dir)
    monkeypatch.setenv("REALM_HOME", str(paths.home))
    return paths


@pytest.fixture
def procs(tmp_path) -> Iterator[Procs]:
    p = Procs(tmp_path)
    yield p
    p.stop_all()


@pytest.fixture
def chromium():
    require_chromium()
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
