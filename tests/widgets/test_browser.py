"""Real headless Chromium (Debian's) through Playwright: the Tavern in Panel and JupyterLab."""


import pytest

from realm_kernel.api import Realm

from ..helpers import (
    ARTIFACTS,
    TEST_TOML,
    run_notebook,
    start_daemon,
    start_lab,
    start_panel,
    wait_for,
    watch_xp_rise,
)

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_panel_tavern_shows_xp_rising_and_pauses(realm_home, procs, chromium):
    realm = Realm(realm_home.home)
    realm.quests.generate("bin", 1, 8000, seed=11)
    start_daemon(procs, realm_home)
    _, base = start_panel(procs, realm_home, "widgets/tavern.py", ready="tavern", timeout=60)
    url = f"{base}/tavern"
    page = chromium.new_page(viewport={"width": 1280, "height": 800})
    page.goto(url)
    first, later = watch_xp_rise(page)
    assert later > first
    wait_for(lambda: page.locator("[data-stat=state]").first.inner_text().lower() == "training", 30,
             "the battle view to show training")
    assert page.locator("[data-stat=quest]").first.inner_text() == "quest: bin-L1-8000-s11.jsonl"

    page.locator("button[data-action=pause]").first.click()
    wait_for(lambda: page.locator("[data-stat=state]").first.inner_text().lower() == "paused", 30,
             "the battle to pause from the page")
    assert (realm_home.control / "pause").exists()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "panel-tavern.png"), full_page=True)
    page.locator("button[data-action=resume]").first.click()
    wait_for(lambda: not (realm_home.control / "pause").exists(), 30, "resume from the page")


def test_jupyterlab_tavern_notebook_shows_xp_rising(realm_home, procs, chromium, tmp_path):
    """What `make play` promises: JupyterLab, the extension's daemon and Task Master, whose
    curriculum writes the first quest into an empty realm."""
    realm_home.config_file.write_text(TEST_TOML.replace("enabled = false", "enabled = true"))
    _, base = start_lab(procs, realm_home, tmp_path, play=True)
    page = chromium.new_page(viewport={"width": 1280, "height": 800})
    run_notebook(page, base)
    first, later = watch_xp_rise(page, timeout=90)
    assert later > first
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "jupyterlab-tavern.png"))
