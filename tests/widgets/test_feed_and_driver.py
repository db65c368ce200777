"""The widget files as composed (widgets/feed.py: prelude, then each widget's own file, its
paths kept) and the poller's thread (widgets/poller.py: one daemon thread per process,
named, ticking the views it holds)."""

from __future__ import annotations

import threading

from realm_widgets import feed
from realm_widgets.poller import Poller


def test_each_widget_is_its_preludes_then_its_own_files():
    js = feed.PRELUDE.read_text(encoding="utf-8")
    css = feed.PRELUDE_CSS.read_text(encoding="utf-8")
    composed = feed._widgets()  # WIDGETS is built at import: build it again here
    assert set(composed) == set(feed.NAMES) and composed == feed.WIDGETS
    for name, w in composed.items():
        assert (w.js_file, w.css_file) == (feed.HERE / f"{name}.js", feed.HERE / f"{name}.css")
        assert w.esm == feed.compose(w.js_file, js) and w.esm.startswith(js + f"\n// ---- {name}.js ----\n")
        assert w.css == feed.compose(w.css_file, css)
        assert w.css.startswith(css + f"\n/* ---- {name}.css ---- */\n")
        assert w.esm.endswith(w.js_file.read_text(encoding="utf-8"))


def test_the_poller_thread_is_one_named_daemon_that_ticks():
    p = Poller()
    p.start_thread()
    driver = p._driver
    assert isinstance(driver, threading.Thread) and driver.daemon and driver.name == "tavern-poller"
    assert driver.is_alive()
    p.start_thread()
    assert p._driver is driver  # once per process


def test_the_poller_task_starts_on_a_running_loop_and_waits_without_one():
    import asyncio
    p = Poller()
    async def nothing() -> None:
        return None
    asyncio.run(nothing())  # what an earlier test on this thread may leave: no current loop
    p.start_task()  # no loop running: nothing to drive it from, and no error
    assert p._driver is None

    async def in_a_kernel() -> tuple[object, bool]:
        p.start_task()
        driver = p._driver
        p.start_task()
        same = p._driver is driver
        driver.cancel()
        return driver, same
    driver, same = asyncio.run(in_a_kernel())
    assert isinstance(driver, asyncio.Task) and same  # once per process
