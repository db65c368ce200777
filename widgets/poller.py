"""The one poller of a process: it refreshes every page view in it (every notebook cell
and every Panel browser session) from one loop, and only views that can be seen.

Each tick it takes the change stamps of the sources the due views read, once per realm
home (a folder listing per source, no query: store/changes.py), and asks each due view's
session for its snapshot with them; a session recomputes only the parts whose sources
changed (widgets/pages.py). A view the front end reports hidden (tab in the background,
scrolled away, closed) is skipped; when it is shown again it is refreshed at once."""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable

log = logging.getLogger("realm.widgets")
TICK_SECONDS = 0.25  # the fastest page's pace (the Oracle's streamed tokens)


class View:
    """A page shown once: its session and `push(snapshot)`, which sends it to the widgets."""

    def __init__(self, session, push: Callable[[dict], None], period: float = 1.0) -> None:
        self.session, self.push, self.period = session, push, period
        # Unseen until the front end says it is seen (prelude.js watchView reports at its
        # first render): a page built for a request that never opens its websocket, or a
        # notebook page never displayed, costs nothing.
        self.shown = False
        self.closed = False
        self.due = 0.0  # when the poller may refresh it next (its clock)
        self.followers: list[View] = []  # views seen and closed with this one

    def follow(self, leader: View) -> View:
        """Be seen, hidden and closed with `leader`: a page's HoloViews plots report no
        visibility of their own, so they follow the page's widgets (widgets/plots.py)."""
        leader.followers.append(self)
        self.shown, self.closed = leader.shown, leader.closed
        return self

    def refresh(self, stamps: dict | None = None) -> None:
        self.push(self.session.snapshot(stamps))

    def set_shown(self, shown: bool) -> None:
        """The front end's report; a view that becomes visible gets the current state now."""
        was, self.shown = self.shown, bool(shown)
        if self.shown and not was and not self.closed:
            self.refresh()
        for f in self.followers:
            f.set_shown(shown)

    def close(self) -> None:
        self.closed = True
        for f in self.followers:
            f.close()


class Poller:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._views: list[View] = []
        self._lock = threading.Lock()
        self._driver: object | None = None

    def add(self, view: View) -> View:
        with self._lock:
            self._views.append(view)
        return view

    def views(self) -> list[View]:
        with self._lock:
            self._views = [v for v in self._views if not v.closed]
            return list(self._views)

    def tick(self) -> int:
        """One round: refresh the shown views that are due; returns how many were."""
        now = self.clock()
        due = [v for v in self.views() if v.shown and now >= v.due]
        by_realm: dict[int, tuple] = {}
        for v in due:  # the sources of every due view of a realm, stamped once
            realm, sources = by_realm.get(id(v.session.realm), (v.session.realm, set()))
            by_realm[id(realm)] = (realm, sources | v.session.sources())
        stamps = {}
        for key, (realm, sources) in by_realm.items():
            try:
                stamps[key] = realm.stamps(sources)
            except Exception as e:  # a half-restored home, say: try again next tick
                log.warning("change stamps: %s", e)
        for v in due:
            # On the period's grid, not `now + period`: views of one pace fall due in the
            # same tick, see the same stamps and so share what one of them read (pages.py).
            v.due = (math.floor(now / v.period) + 1) * v.period
            if id(v.session.realm) not in stamps:
                continue
            try:
                v.refresh(stamps[id(v.session.realm)])
            except Exception as e:  # one view's failure never stops the others
                log.warning("page refresh: %s", e)
        return len(due)

    def start_task(self) -> None:
        """Drive it from the running asyncio loop (a Jupyter kernel's), once per process.

        With no loop running (a plain script, a test) nothing drives it yet: a later call
        from a kernel's cell starts it. Not `get_event_loop()`: after an `asyncio.run` on
        this thread it raises, and before one it made a loop nothing would ever run."""
        with self._lock:
            if self._driver is not None:
                return
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                return

            async def loop() -> None:
                while True:
                    self.tick()
                    await asyncio.sleep(TICK_SECONDS)
            self._driver = running.create_task(loop())

    def start_thread(self) -> None:
        """Drive it from a daemon thread (the Panel server), once per process."""
        with self._lock:
            if self._driver is not None:
                return
            stop = threading.Event()

            def loop() -> None:
                while not stop.wait(TICK_SECONDS):
                    self.tick()
            self._driver = threading.Thread(target=loop, daemon=True, name="tavern-poller")
            self._driver.start()


POLLER = Poller()  # the process's one poller
