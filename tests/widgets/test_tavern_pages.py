"""Every page of the Panel app (`python -m realm_widgets.app`) in real headless Chromium, on one
server and one daemon for the module: upload and reject quests, reorder and re-prioritise,
pause the battle, promote a champion (toast + achievement), edit settings with the live
VRAM estimate, open the Guild's heatmap, chat with the Oracle. Screenshots of each page
go to test-artifacts/ (see README, Testing)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from realm_kernel.api import Realm

from ..helpers import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    TEST_TOML,
    Procs,
    make_home,
    require_chromium,
    start_daemon,
    start_panel,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.browser]
PAGES = ("tavern", "quests", "oracle", "vault", "settings", "scheduler", "guild")


def record_real_eval(realm: Realm, step: int, name: str, size: int = 6) -> None:
    """A small BIN level-1 eval of a real checkpoint: its own answers, scored per primitive."""
    import realm_skills as skills
    from realm_skills.evaluation import eval_problems
    realm.oracle.load(step)
    problems = eval_problems("bin", 1, size=size)
    answers = [realm.oracle.chat(step, message=p.question, sampling={"max_new_tokens": 24})["content"]
               for p in problems]
    realm.skills.record_eval(skills.run_eval("bin", 1, answers, problems=problems), step, name)


@pytest.fixture(scope="module")
def tavern(tmp_path_factory, dio_mini_dir):
    require_chromium()
    tmp = tmp_path_factory.mktemp("tavern")
    # The pages are clicked on checkpoints picked at the start (tavern.steps) while a long
    # battle saves more: automatic retention (on by default, tested in
    # test_checkpoint_keeper.py and the idle loop) would delete them under the test.
    paths = make_home(tmp / "realm", dio_mini_dir, TEST_TOML + "\n[retention]\nauto = false\n")
    realm = Realm(paths.home)
    procs = Procs(tmp)
    try:
        realm.quests.generate("bin", 1, 120, seed=3)
        start_daemon(procs, paths)
        wait_for(lambda: realm.quests.queue()["recently_completed"], 240, "the first quest to complete")
        steps = sorted(c.step for c in realm.checkpoints.list())
        assert len(steps) >= 2, steps
        for step in steps[-2:]:
            record_real_eval(realm, step, realm.checkpoints.get(step).name)
        realm.oracle.pool.unload(steps[-1])
        realm.oracle.pool.unload(steps[-2])
        realm.quests.generate("bin", 1, 20000, seed=11)  # keeps the daemon busy: uploads stay queued
        wait_for(lambda: realm.training.status()["state"] == "training", 120, "the long battle")
        _, base = start_panel(procs, paths, ready="quests", name="panel-app")
        from playwright.sync_api import sync_playwright
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            requested: list[str] = []
            context.on("request", lambda r: requested.append(r.url))
            yield SimpleNamespace(base=base, realm=realm, paths=paths, context=context,
                                  requested=requested, steps=steps, tmp=tmp)
            browser.close()
    finally:
        procs.stop_all()


def open_page(t, name: str):
    page = t.context.new_page()
    page.goto(f"{t.base}/{'' if name == 'tavern' else name}")
    return page


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"panel-{name}.png"), full_page=True)


def test_every_route_renders_offline_and_fits_a_narrow_window(tavern):
    marks = {"tavern": "[data-stat=xp]", "quests": "[data-section=high]", "oracle": "[data-pane=left]",
             "vault": "[data-step]", "settings": "[data-key='training.max_length']",
             "scheduler": ".rk-box", "guild": "[data-skill=bin]"}
    for name in PAGES:
        page = open_page(tavern, name)
        page.locator(marks[name]).first.wait_for(timeout=60_000)
        assert page.locator(f"nav a[data-page={name}].current").count() == 1
        if name == "tavern":  # the Bokeh plots render too
            page.locator(".bk-Canvas, canvas").first.wait_for(timeout=60_000)
        shot(page, name)
        page.close()
    local = ("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:", "about:")
    assert [u for u in tavern.requested if not u.startswith(local)] == []  # no CDN

    narrow = tavern.context.browser.new_page(viewport={"width": 400, "height": 800})
    for name in PAGES:
        narrow.goto(f"{tavern.base}/{'' if name == 'tavern' else name}")
        narrow.locator(marks[name]).first.wait_for(timeout=60_000)
        width = narrow.evaluate("document.documentElement.scrollWidth")
        assert width <= 420, f"{name} overflows a 400px window ({width}px)"
        narrow.screenshot(path=str(ARTIFACTS / f"panel-{name}-narrow.png"), full_page=True)
    narrow.close()


def test_tavern_shows_the_live_battle_and_pauses(tavern):
    page = open_page(tavern, "tavern")
    state = page.locator("[data-stat=state]").first
    wait_for(lambda: state.inner_text().lower() == "training", 60, "the battle view to show training")
    page.locator(".rt-float.rt-xp").first.wait_for(state="attached", timeout=30_000)  # XP floats up
    assert page.locator("[data-skill=bin]").first.inner_text().startswith("🔢 BIN Lv")
    page.locator("button[data-action=pause]").first.click()
    wait_for(lambda: state.inner_text().lower() == "paused", 30, "the battle to pause from the page")
    assert tavern.paths.control_file("pause").exists()
    page.locator("button[data-action=resume]").first.click()
    wait_for(lambda: state.inner_text().lower() == "training", 30, "the battle to resume")
    assert "First checkpoint" in page.locator("[data-stat=achievements]").inner_text()
    page.close()


def test_quest_board_uploads_rejects_reorders_and_deletes(tavern):
    page = open_page(tavern, "quests")
    board = page.locator(".rq-box").first
    board.wait_for(timeout=60_000)
    good = tavern.tmp / "mine.jsonl"
    good.write_text('{"prompt": "2+2?", "completion": "4"}\n{"prompt": "3+3?", "completion": "6"}\n')
    page.locator("select[data-role=upload-priority]").select_option("low")
    page.locator("input[data-role=file]").set_input_files(str(good))
    page.locator("button[data-action=upload]").click()
    wait_for(lambda: "accepted" in page.locator("[data-stat=notice]").inner_text(), 30, "the upload")
    low = page.locator("[data-section=low] [data-quest='mine.jsonl']")
    low.wait_for(timeout=30_000)  # the daemon admitted it into queue/low

    bad = tavern.tmp / "broken.jsonl"
    bad.write_text('{"prompt": "x"\n')
    page.locator("input[data-role=file]").set_input_files(str(bad))
    page.locator("button[data-action=upload]").click()
    wait_for(lambda: "REJECTED" in page.locator("[data-stat=report]").inner_text(), 30, "the inline report")
    assert "line 1" in page.locator("[data-stat=notice]").inner_text()

    (tavern.paths.inbox / "garbled.jsonl").write_text('{"messages": 7}\n')  # dropped past the API
    failed = page.locator("[data-section=failed] [data-quest='garbled.jsonl']")
    failed.wait_for(timeout=30_000)
    assert "line 1" in failed.locator(".rq-reason").inner_text()  # the daemon's reason

    low.locator("select[data-role=priority]").select_option("high")
    page.locator("[data-section=high] [data-quest='mine.jsonl']").wait_for(timeout=30_000)
    assert [q["name"] for q in tavern.realm.quests.queue()["high"]] == ["mine.jsonl"]

    page.locator("select[data-role=skill]").select_option("bin")
    for count in ("40", "50"):
        page.locator("input[data-role=count]").fill(count)
        page.locator("button[data-action=generate]").click()
        wait_for(lambda c=count: f"-{c}-s" in page.locator("[data-stat=notice]").inner_text(), 30, "generate")
    normal = page.locator("[data-section=normal] [data-quest]")
    wait_for(lambda: normal.count() == 2, 30, "both generated quests queued")
    second = normal.nth(1).get_attribute("data-quest")
    normal.nth(1).locator("button[data-action=up]").click()
    wait_for(lambda: tavern.realm.quests.queue()["normal"][0]["name"] == second, 30, "the reorder")
    wait_for(lambda: normal.first.get_attribute("data-quest") == second, 30, "the board to follow")

    mine = page.locator("[data-section=high] [data-quest='mine.jsonl']")
    mine.locator("button[data-action=delete]").click()
    mine.locator("button[data-action=delete]", has_text="Confirm").click()
    wait_for(lambda: page.locator("[data-quest='mine.jsonl']").count() == 0, 30, "the delete")
    assert not tavern.realm.quests.queue()["high"]
    shot(page, "quests-used")
    page.close()


def test_vault_promotes_a_champion_with_a_toast_and_an_achievement(tavern):
    page = open_page(tavern, "vault")
    step = tavern.steps[0]
    row = page.locator(f"[data-step='{step}']")
    row.wait_for(timeout=60_000)
    page.locator("select[data-role=sort]").select_option("loss")
    row.locator("button[data-action=promote]").click()
    page.locator(".rt-toast[data-kind=champion]").wait_for(timeout=30_000)
    assert "New champion!" in page.locator(".rt-toast[data-kind=champion]").first.inner_text()
    wait_for(lambda: "🏆" in row.locator(".rv-name").inner_text(), 30, "the champion's mark")
    assert tavern.realm.checkpoints.champion()["step"] == step
    shot(page, "vault-champion")
    # The champion is protected. Its delete button may be disabled a refresh after the mark
    # appears (seen in two full runs, not explained: docs/tavern.md).
    wait_for(lambda: row.locator("button[data-action=delete]").is_disabled(), 30,
             "the champion's delete button disabled")

    # A folder outside the realm's exports/ is refused on the page; a name lands inside it.
    row.locator("input[data-role=export-dest]").fill(str(tavern.tmp / "exported"))
    row.locator("button[data-action=export]").click()
    wait_for(lambda: "refused" in page.locator("[data-stat=notice]").inner_text(), 60, "the refusal")
    assert not (tavern.tmp / "exported").exists()
    dest = tavern.realm.paths.exports / "exported"
    row.evaluate("e => { e.dataset.mark = 'drawn-before' }")
    row.locator("input[data-role=export-dest]").fill("exported")
    row.locator("button[data-action=export]").click()
    wait_for(lambda: "exported to" in page.locator("[data-stat=notice]").inner_text(), 60, "the export")
    # The notice redrew the widget, but an unchanged row keeps its node (clicks and focus survive).
    assert row.get_attribute("data-mark") == "drawn-before"
    assert (dest / "config.json").exists() and not list(dest.glob("optimizer*"))

    def spare() -> int | None:  # a checkpoint of the long battle that nothing protects
        protected = tavern.realm.vault.protected_steps()
        return next((c.step for c in tavern.realm.checkpoints.list()
                     if c.step not in protected and c.step not in tavern.steps), None)
    victim = wait_for(spare, 60, "a checkpoint that may be deleted")
    vrow = page.locator(f"[data-step='{victim}']")
    vrow.locator("button[data-action=delete]").click()
    vrow.locator("button[data-action=delete]", has_text="Confirm").click()
    wait_for(lambda: "deleted" in page.locator("[data-stat=notice]").inner_text(), 60, "the delete")
    assert not any(p.name.startswith(f"checkpoint-{victim}-") for p in tavern.paths.checkpoints.iterdir())
    tav = open_page(tavern, "tavern")
    wait_for(lambda: "First champion" in tav.locator("[data-stat=achievements]").inner_text(), 30,
             "the achievement with its date")
    assert "First champion" in [a["name"] for a in tavern.realm.reports.achievements()]
    tav.close()
    page.close()


def test_settings_validate_confirm_and_follow_the_vram_estimate(tavern):
    page = open_page(tavern, "settings")
    total = page.locator("[data-stat=vram-total]")
    total.wait_for(timeout=60_000)
    before = total.inner_text()
    page.locator("input[data-key='training.batch_size']").fill("0")
    err = page.locator("[data-error='training.batch_size']")
    wait_for(lambda: "greater than or equal to 1" in err.inner_text(), 30, "the field's error")
    page.locator("input[data-key='training.batch_size']").fill("8")
    wait_for(lambda: err.inner_text() == "", 30, "the error to clear")
    page.locator("input[data-key='training.max_length']").fill("512")
    wait_for(lambda: total.inner_text() != before, 30, "the VRAM estimate to follow the form")
    page.locator("button[data-action=save]").click()
    page.locator("button[data-action=confirm]").wait_for(timeout=30_000)  # max_length is critical
    assert "max_length" in page.locator("[data-stat=confirm]").inner_text()
    assert "max_length = 512" not in tavern.paths.config_file.read_text()
    page.locator("button[data-action=confirm]").click()
    wait_for(lambda: "max_length = 512" in tavern.paths.config_file.read_text(), 30, "realm.toml written")
    assert tavern.realm.config.training.max_length == 512
    shot(page, "settings-saved")
    page.close()


def test_guild_heatmap_and_targeted_sparring(tavern):
    page = open_page(tavern, "guild")
    card = page.locator("[data-skill=bin]").first
    card.wait_for(timeout=60_000)
    card.locator("button[data-action=heatmap]").click()
    heat = card.locator("table[data-role=heatmap]")
    heat.wait_for(timeout=30_000)
    assert heat.locator("td.rg-cell").count() >= 2  # primitives x the two evaluated checkpoints
    assert str(tavern.steps[-1]) in heat.inner_text()
    page.locator(".realm-plots .bk-Canvas, .realm-plots canvas").first.wait_for(timeout=60_000)
    shot(page, "guild-heatmap")
    card.locator("button[data-action=spar]").click()
    wait_for(lambda: "Targeted sparring" in page.locator("[data-stat=notice]").inner_text(), 60, "sparring")
    assert any(q["name"].startswith("target-bin-L1") for q in tavern.realm.quests.queue()["high"])
    page.close()


def test_guild_shows_sy_progress_and_the_passive_history(tavern):
    """SY's card beside BIN's, and the forgetting watch: real probes of the two evaluated
    checkpoints, plus a reference run (the golden answers, recorded first) so the page
    has a best to fall from and flags the drop."""
    from realm_kernel.evals import forgetting, grading
    realm = tavern.realm
    if not realm.skills.passive_history()["probe_runs"]:
        cfg = realm.config.watch.model_copy(update={"per_primitive": 1, "review": False})
        forgetting.run_probe(realm.home, lambda q, golden: list(golden), 0, "reference", "reference", cfg)
        for step in tavern.steps[-2:]:
            ask, _ = grading.checkpoint_answers(realm.checkpoints.get(step).path, threads=1)
            forgetting.run_probe(realm.home, ask, step, realm.checkpoints.get(step).name, "every_n", cfg)
    hist = realm.skills.passive_history()
    assert hist["probe_runs"] == 3 and all(len(p["points"]) == 3 for p in hist["passives"])
    page = open_page(tavern, "guild")
    sy = page.locator("[data-skill=sy]").first
    sy.wait_for(timeout=60_000)
    assert "Level 1 / 50" in sy.locator("[data-stat=level]").inner_text()
    assert "Word Weaving" in sy.inner_text()
    watch = page.locator("[data-role=passives]")
    wait_for(lambda: watch.locator("tr[data-passive]").count() == 11, 60, "the 11 passives")
    dropped = [p["passive"] for p in hist["passives"] if p["drop"]]
    assert dropped  # an untrained-ish hero is far below the golden reference
    row = watch.locator(f"tr[data-passive={dropped[0]}]")
    assert row.locator("[data-stat=drop]").count() == 1 and row.locator("svg.rg-spark circle").count() == 3
    row.scroll_into_view_if_needed()
    shot(page, "guild-passives")
    row.locator("button[data-action=review]").click()
    wait_for(lambda: "Review quest" in page.locator("[data-stat=notice]").inner_text(), 60, "review quest")
    assert any(q["name"].startswith(f"review-{dropped[0]}-") for q in realm.quests.queue()["normal"]) or any(
        p.name.startswith(f"review-{dropped[0]}-") for p in realm.paths.inbox.glob("*.jsonl"))
    page.close()


def test_oracle_page_chats(tavern):
    page = open_page(tavern, "oracle")
    left = page.locator("[data-pane=left]").first
    step = tavern.steps[-1]
    wait_for(lambda: left.locator(f"option[value='{step}']").count() == 1, 60, "the checkpoints")
    left.locator("select[data-role=step]").select_option(str(step))
    left.locator("button[data-action=load]").click()
    name = tavern.realm.checkpoints.get(step).name
    wait_for(lambda: name in page.locator("[data-stat=loaded]").inner_text(), 60, "the load")
    page.locator("textarea").fill("What is ①+①?")
    page.locator("button[data-action=chat]").click()
    wait_for(lambda: left.locator("[data-stat=answered-by]").inner_text() == f"answered by {name}", 60,
             "the answer naming its model")
    # The reply shown is that checkpoint's own greedy answer, streamed in full.
    tavern.realm.oracle.load(step)
    expected = tavern.realm.oracle.chat(step=step, message="What is ①+①?",
                                        sampling={"max_new_tokens": 64})["content"]
    tavern.realm.oracle.pool.unload(step)
    assert expected, "the checkpoint answers something"
    reply = left.locator(".ro-assistant .ro-text").first
    wait_for(lambda: reply.text_content() == expected, 60, f"the reply {expected!r} in the page")
    assert left.locator(".ro-user .ro-text").first.text_content() == "What is ①+①?"
    page.close()


def test_scheduler_page(tavern):
    page = open_page(tavern, "scheduler")
    page.locator(".rk-box").first.wait_for(timeout=60_000)
    task = page.locator("[data-task]").first
    task.wait_for(timeout=30_000)
    task_id = task.get_attribute("data-task")
    assert page.locator("[data-skill=bin]").count() == 1  # the curriculum
    prio = page.locator("[data-skill=bin] input[data-role=skill-priority]")
    prio.fill("2")
    prio.dispatch_event("change")
    wait_for(lambda: tavern.realm.config.curriculum.skills["bin"].priority == 2, 30,
             "the skill priority saved to realm.toml")
    task.locator("button[data-action=run]").click()
    wait_for(lambda: f"{task_id}: run requested" in page.locator("[data-stat=notice]").inner_text(),
             30, "run now")
    # The click wrote the Task Master's request file for this very task.
    assert (tavern.realm.paths.tasks / "requests" / f"{task_id}.json").is_file()
    # A task parameter (sparring's count) edited on the page lands in the task settings.
    count = page.locator("[data-task=sparring_bin] input[data-role=param][data-param=count]")
    count.fill("64")
    count.dispatch_event("change")
    wait_for(lambda: next(t for t in tavern.realm.tasks.list() if t["task_id"] == "sparring_bin")
             ["parameters"]["count"] == 64, 30, "the sparring count saved")
    shot(page, "scheduler-run")
    page.close()
