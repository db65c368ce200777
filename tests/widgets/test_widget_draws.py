"""What a widget's draw() changes in the page (issue 30: the browser's share of a watched
Tavern). The battle view and the hero card, composed as both hosts load them
(widgets/feed.py), render in real Chromium on a model object that keeps their state
fields and fires `change:<field>` as the hosts' models do; a MutationObserver counts
every change draw() makes to the DOM.

- a state update that changes nothing on screen changes nothing in the DOM (prelude's
  `setText`, `whenChanged`);
- the loss curve is redrawn only when the losses or the alarms change, the events list
  only when the events do;
- one XP float rises at a time, and the steps gained while it rose go into the next.
"""

from __future__ import annotations

import json

import pytest

from realm_widgets.feed import WIDGETS

from ..helpers import CHROMIUM, CHROMIUM_ARGS, require_chromium

pytestmark = pytest.mark.slow

# A model with the anywidget surface the widgets use (get/set/save_changes/on/off), and
# `update` for the test: set fields and fire their change events, as a refresh does. Then
# `settled()`: draw() runs in a microtask after the changes; a task boundary passes it.
HARNESS = """
async (args) => {
  const [esm, state] = args;
  const url = URL.createObjectURL(new Blob([esm], { type: "text/javascript" }));
  const widget = (await import(url)).default;
  const data = { ...state }, handlers = {};
  const model = {
    get: (k) => data[k], set: (k, v) => { data[k] = v; }, save_changes() {},
    on(ev, f) { (handlers[ev] ||= []).push(f); }, off() {},
  };
  const el = document.createElement("div");
  document.body.append(el);
  widget.render({ model, el });
  const log = [];  // the records delivered so far (delivery empties the observer's queue)
  const seen = new MutationObserver((records) => log.push(...records));
  seen.observe(el, { subtree: true, childList: true, attributes: true, characterData: true });
  window.rt = {
    el,
    settled: () => new Promise((r) => setTimeout(r, 0)),
    async update(patch) {
      for (const [k, v] of Object.entries(patch)) {
        data[k] = v;
        for (const f of handlers[`change:${k}`] || []) f();
      }
      await window.rt.settled();
    },
    // The changes draw() made since the last call, as "where: what" lines.
    changes() {
      return log.splice(0).concat(seen.takeRecords()).map((r) => {
        const t = r.target.nodeType === 1 ? r.target : r.target.parentElement;
        return `${t.closest("svg") ? "curve" : t.closest(".rt-events") ? "events"
               : t.closest(".rt-float") ? "float" : t.className || t.tagName}: ${r.type}`;
      });
    },
  };
}
"""


def battle(step: int, loss: float = 1.5) -> dict:
    return {"state": "training", "quest": "q.jsonl", "step": step, "local_step": step,
            "total_steps": 100, "loss": loss, "tokens_per_s": 900.0, "eta_seconds": 60}


LOSSES = [[1, 2.0], [2, 1.8], [3, 1.7]]
EVENTS = [{"ts": 1_765_000_000, "kind": "checkpoint_saved", "message": "Checkpoint at step 10"}]


@pytest.fixture
def page():
    require_chromium()
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page()
        finally:
            browser.close()


def mount(page, name: str, state: dict) -> None:
    page.set_content(f"<style>{WIDGETS[name].css}</style><body></body>")
    page.evaluate(HARNESS, [WIDGETS[name].esm, state])
    page.evaluate("rt.changes()")  # the first draw builds everything


def update(page, patch: dict) -> list[str]:
    """Apply a state patch, let draw() run, return the DOM changes it made."""
    return page.evaluate(f"async () => {{ await rt.update({json.dumps(patch)}); return rt.changes(); }}")


def test_the_battle_view_changes_only_what_its_new_state_shows(page):
    mount(page, "battle_view", {"battle": battle(10), "losses": LOSSES, "alarms": [], "events": EVENTS,
                                "hero": {"xp": 10}, "notice": None})
    assert update(page, {"battle": battle(10), "losses": list(LOSSES), "events": list(EVENTS)}) == [], \
        "the same state again changes nothing"
    # A new step with the same losses and events: the facts and one float, not the curve.
    changes = update(page, {"battle": battle(11)})
    assert changes and not [c for c in changes if c.startswith(("curve", "events"))], changes
    # A new loss point redraws the curve; a new event the list.
    assert any(c.startswith("curve") for c in update(page, {"losses": [*LOSSES, [4, 1.6]]}))
    assert any(c.startswith("events") for c in update(page, {"events": [
        {"ts": 1_765_000_100, "kind": "quest_completed", "message": "Quest done"}, *EVENTS]}))
    assert any(c.startswith("curve") for c in update(page, {"alarms": [3]}))


def test_one_float_at_a_time_a_rest_between_and_the_next_one_sums_the_steps_between(page):
    mount(page, "battle_view", {"battle": battle(10), "losses": LOSSES, "alarms": [], "events": [],
                                "hero": {"xp": 10}, "notice": None})
    floats = "() => [...document.querySelectorAll('.rt-float')].map((f) => f.firstChild.textContent)"
    update(page, {"battle": battle(11, 1.25)})
    assert page.evaluate(floats) == ["+1 XP"]
    assert page.locator(".rt-float .rt-dmg").inner_text() == "-1.250"
    for step in (12, 13, 14):  # steps come faster than a float rises
        update(page, {"battle": battle(step)})
    assert page.evaluate(floats) == ["+1 XP"], "no second float while one rises"
    page.wait_for_function("() => !document.querySelector('.rt-float')")  # its rise ended
    update(page, {"battle": battle(15)})
    assert page.evaluate(floats) == [], "a rest after a float: none rises at once"
    # When the rest ends the next one rises, from the state last drawn, with no new state.
    page.wait_for_function("() => document.querySelector('.rt-float')")
    assert page.evaluate(floats) == ["+4 XP"], "the steps gained meanwhile go into the next float"


def test_the_hero_card_changes_nothing_for_the_same_hero_and_skills(page):
    hero = {"name": "DIO", "level": 2, "xp": 1234, "xp_into_level": 234, "xp_per_level": 1000,
            "atk": 0.5, "defense": 0.25, "acc": 0.75, "gold": 12}
    skills = [{"skill": "bin", "name": "Binary", "icon": "B", "level": 1, "max_level": 5}]
    mount(page, "hero_card", {"hero": hero, "skills": skills})
    assert update(page, {"hero": dict(hero), "skills": list(skills)}) == []
    changes = update(page, {"hero": {**hero, "xp": 1235, "xp_into_level": 235}})
    assert changes and not [c for c in changes if "rt-badges" in c], changes
    # The XP bar fills by a scale (composited), never a width (a layout at every frame).
    fill = page.locator(".rt-xpfill")
    assert fill.evaluate("f => [f.style.transform, f.style.width]") == ["scaleX(0.235)", ""]
    assert any("rt-badges" in c for c in update(page, {"skills": [{**skills[0], "level": 2}]}))
