"""The README's pictures, from a real run: a fresh realm with dio-mini, the daemon training
a BIN quest, real evals of its checkpoints, then every Panel page and the Tavern notebook
in JupyterLab, shot with Debian's Chromium (Playwright) into docs/img/.

    .venv/bin/python docs/screenshots.py            # ~3-5 minutes on a 2-core CPU
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from realm_kernel.api import Realm  # noqa: E402
from realm_kernel.train.dio_mini import build_dio_mini  # noqa: E402
from tests.helpers import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    NO_CHROMIUM,
    Procs,
    make_home,
    run_notebook,
    start_daemon,
    start_lab,
    start_panel,
    wait_for,
    watch_xp_rise,
)
from tests.widgets.test_tavern_pages import PAGES, record_real_eval  # noqa: E402

OUT = REPO / "docs" / "img"
MARKS = {"tavern": "[data-stat=xp]", "quests": "[data-section=high]", "oracle": "[data-pane=left]",
         "vault": "[data-step]", "settings": "[data-key='training.max_length']",
         "scheduler": ".rk-box", "guild": "[data-skill=bin]"}


def main() -> None:
    if not Path(CHROMIUM).exists():
        raise SystemExit(NO_CHROMIUM)
    from playwright.sync_api import sync_playwright
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="realm-shots-") as tmp:
        tmp = Path(tmp)
        paths = make_home(tmp / "realm", build_dio_mini(tmp / "dio-mini"))
        realm = Realm(paths.home)
        procs = Procs(tmp)
        try:
            print("training a first BIN quest with the daemon...", flush=True)
            realm.quests.generate("bin", 1, 640, seed=3)  # ~80 steps: BIN L1 is learnt by then
            start_daemon(procs, paths)
            wait_for(lambda: realm.quests.queue()["recently_completed"], 300, "the first quest")
            for step in sorted(c.step for c in realm.checkpoints.list())[-3:]:
                record_real_eval(realm, step, realm.checkpoints.get(step).name)
            realm.quests.generate("bin", 1, 20000, seed=11)  # a battle in progress for the pictures
            wait_for(lambda: realm.training.status()["state"] == "training", 120, "the battle")
            _, base = start_panel(procs, paths, ready="quests", name="panel")
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                for name in PAGES:
                    page.goto(f"{base}/{'' if name == 'tavern' else name}")
                    page.locator(MARKS[name]).first.wait_for(timeout=90_000)
                    if name in ("tavern", "guild"):
                        page.locator(".bk-Canvas, canvas").first.wait_for(timeout=90_000)
                    page.wait_for_timeout(1500)
                    page.screenshot(path=str(OUT / f"panel-{name}.png"))
                    print("shot", name, flush=True)
                procs.stop(procs.procs[-1])
                news = tmp / "lab" / "lab-settings" / "@jupyterlab" / "apputils-extension"
                news.mkdir(parents=True)  # no "news?" popup over the picture
                (news / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
                root = tmp / "lab-root"  # a copy: the run's outputs never land in notebooks/
                shutil.copytree(REPO / "notebooks", root / "notebooks")
                _, lab = start_lab(procs, paths, tmp / "lab", play=False, REALM_WEAVER="0", root_dir=root)
                run_notebook(page, lab)
                watch_xp_rise(page, 120)
                page.locator("[data-stat=xp]").first.scroll_into_view_if_needed()
                page.wait_for_timeout(2000)
                page.screenshot(path=str(OUT / "jupyterlab-tavern.png"))
                print("shot jupyterlab", flush=True)
                browser.close()
        finally:
            procs.stop_all()
    print(f"screenshots in {OUT}")


if __name__ == "__main__":
    main()
