"""The Oracle page of the Panel app in real headless Chromium: load by step, chat with
streamed tokens, see which model answered, a duel, an "ask DIO" probe, a refusal."""


import pytest
import requests

from realm_kernel.api import Realm

from ..helpers import ARTIFACTS, start_panel, wait_for
from ..oracle_helpers import oracle_home as oracle_home_fixture

pytestmark = [pytest.mark.slow, pytest.mark.browser]
oracle_home = oracle_home_fixture


def test_panel_oracle_page_chats_duels_and_probes(oracle_home, procs, chromium):
    names = {c["step"]: c["name"] for c in Realm(oracle_home.home).oracle.checkpoints()}
    _, base = start_panel(procs, oracle_home, "widgets/tavern.py", "widgets/oracle.py", ready="oracle",
                          timeout=60)
    assert requests.get(f"{base}/tavern", timeout=10).ok  # the Tavern still has its route

    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{base}/oracle")
    left, right = page.locator("[data-pane=left]").first, page.locator("[data-pane=right]").first
    wait_for(lambda: left.locator("option[value='30']").count() == 1, 60, "the ledger's checkpoints")

    def load(pane, step):
        pane.locator("select[data-role=step]").select_option(str(step))
        pane.locator("button[data-action=load]").click()
        wait_for(lambda: names[step] in page.locator("[data-stat=loaded]").inner_text(), 60,
                 f"step {step} to load")

    load(left, 30)
    page.locator("textarea").fill("What is ①+①?")
    page.locator("button[data-action=chat]").click()
    wait_for(lambda: left.locator("[data-stat=answered-by]").inner_text() == f"answered by {names[30]}",
             60, "the answer naming its model")
    wait_for(lambda: left.locator(".ro-assistant .ro-text").first.inner_text().strip() not in ("", "…"),
             60, "streamed tokens")

    load(right, 20)
    page.locator("textarea").fill("What is ①+②?")
    page.locator("button[data-action=duel]").click()
    wait_for(lambda: right.locator("[data-stat=answered-by]").inner_text() == f"answered by {names[20]}",
             60, "the duel's right answer")
    wait_for(lambda: left.locator(".ro-assistant").count() == 2, 60, "the duel's left answer")

    page.locator("button[data-action=probe][data-skill=bin]").click()
    wait_for(lambda: page.locator("[data-stat=verdict]").count() == 1, 90, "the probe's verdict")
    assert names[30] in page.locator("[data-stat=probe]").inner_text()
    assert "expected:" in page.locator("[data-stat=probe]").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "panel-oracle.png"), full_page=True)

    left.locator("select[data-role=step]").select_option("10")  # never loaded
    page.locator("textarea").fill("hi")
    page.locator("button[data-action=chat]").click()
    wait_for(lambda: "Step 10 not loaded" in page.locator("[data-stat=notice]").inner_text(), 30,
             "the refusal naming the step and the loaded ones")
    assert "[20, 30]" in page.locator("[data-stat=notice]").inner_text()
