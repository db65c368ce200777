"""HoloViews (Bokeh) plots where a person would rather look than read: loss and val loss
by step with checkpoint markers, tokens/s, eval accuracy by level, the per-primitive
accuracy heatmap. Pure functions from `Realm` data to HoloViews objects, and one Panel
layout per page that the process's one poller redraws only when the tables a plot reads
changed and the page is seen (both hosts)."""

from __future__ import annotations

from functools import partial

import holoviews as hv
import panel as pn

from realm_kernel.api import Realm

from .pages import Session
from .poller import POLLER, Poller, View

_ready = False
# A plot is looked at, not raced: while its data change it is redrawn at most this often
# (the widgets keep their page's pace: a new ledger row still shows within a second).
# A history plot's pace (TensorBoard's page reloads its charts every 30 s): each
# redraw is Bokeh drawing every plot of the page again in the browser (at 5 s, half of
# what Chromium spent drawing the notebook's seven pages while DIO trained, measured).
PLOT_SECONDS = 15.0


def _extension(notebook: bool) -> None:
    global _ready
    if not _ready:
        if notebook:  # offline: BokehJS and Panel's bundle come from the kernel, never a CDN
            pn.config.inline = True
        hv.extension("bokeh", logo=False, inline=True)
        _ready = True


def battle_data(realm: Realm) -> dict:
    return {"loss": realm.reports.series("loss"), "val_loss": realm.reports.series("val_loss"),
            "tokens_per_s": realm.reports.series("tokens_per_s"),
            "checkpoints": [[c.step, c.loss] for c in realm.checkpoints.list(limit=200)
                            if c.loss is not None]}


def loss_plot(d: dict) -> hv.Overlay:
    loss = hv.Curve(d["loss"] or [(0, None)], "step", "loss", label="loss")
    val = hv.Curve(d["val_loss"] or [(0, None)], "step", "loss", label="val loss")
    marks = hv.Scatter(d["checkpoints"] or [], "step", "loss", label="checkpoint").opts(
        size=8, marker="diamond", color="#d9a404")
    return (loss * val * marks).opts(title="Loss by step", responsive=True, height=260,
                                     legend_position="top_right", show_grid=True)


def tokens_plot(d: dict) -> hv.Curve:
    return hv.Curve(d["tokens_per_s"] or [(0, None)], "step", "tokens/s").opts(
        title="Tokens per second", responsive=True, height=200, color="#2e9d5b", show_grid=True)


def guild_data(realm: Realm) -> dict:
    return {"evals": [{"skill": r["skill"], "level": r["level"], "accuracy": r["accuracy"], "step": r["step"]}
                      for r in realm.skills.eval_history()],
            "heatmaps": {s["skill"]: realm.skills.primitive_history(s["skill"])
                         for s in realm.skills.list(levels=False)}}


def accuracy_plot(d: dict) -> hv.Overlay:
    by_skill = {}
    for r in d["evals"]:
        by_skill.setdefault(r["skill"], []).append((r["level"], r["accuracy"]))
    layers = [hv.Scatter(pts, "level", "accuracy", label=s.upper()).opts(size=7)
              for s, pts in by_skill.items()]
    overlay = hv.Overlay(layers or [hv.Scatter([], "level", "accuracy")])
    return overlay.opts(hv.opts.Scatter(ylim=(0, 1.05)), hv.opts.Overlay(
        title="Eval accuracy by level", responsive=True, height=240, show_grid=True))


def heatmap(skill: str, h: dict) -> hv.HeatMap:
    cells = [(str(step), prim, acc) for step, prim, acc in h["cells"]]
    return hv.HeatMap(cells, ["checkpoint step", "primitive"], "accuracy").opts(
        title=f"{skill.upper()}: accuracy per primitive", responsive=True,
        height=60 + 26 * max(3, len(h["primitives"])),
        cmap="RdYlGn", clim=(0, 1), colorbar=True, tools=["hover"], xrotation=45)


# What each plot reads (store/changes.py sources): it is redrawn only when one changed.
READS: dict[str, tuple[str, ...]] = {"battle": ("metrics", "checkpoints"),
                                     "guild": ("evals", "primitive_accuracy")}


def draw(name: str, d: dict) -> list:
    if name == "battle":
        return [loss_plot(d), tokens_plot(d)]
    return [accuracy_plot(d), *[heatmap(s, h) for s, h in d["heatmaps"].items() if h["cells"]]]


class PlotSession(Session):
    """The data of a page's plots, as the parts of a session (one per plot, reading
    READS): the poller recomputes a plot's data only when the stamps of its tables
    changed, like any page's part (widgets/pages.py)."""

    def __init__(self, realm: Realm, names: tuple[str, ...]) -> None:
        super().__init__(realm)
        self.names = names

    def parts(self) -> dict[str, tuple[str, ...] | None]:
        return {name: READS[name] for name in self.names}

    def battle(self) -> dict:
        return {"battle": battle_data(self.realm)}

    def guild(self) -> dict:
        return {"guild": guild_data(self.realm)}


def layout(name: str, data: dict) -> tuple:
    """What decides a page's panes for a plot: while it stays the same, new data go into
    the plots already drawn."""
    return (name,) if name == "battle" else tuple(s for s, h in data["heatmaps"].items() if h["cells"])


def plots_for(names: tuple[str, ...], realm: Realm, page_view: View, notebook: bool = False,
              poller: Poller = POLLER) -> pn.Column:
    """The plots of a page: a view in the process's one poller (no timer of their own),
    seen, hidden and closed with the page's widgets (`page_view`), redrawn only when
    their data changed, at most every PLOT_SECONDS."""
    _extension(notebook)
    col = pn.Column(sizing_mode="stretch_width", css_classes=["realm-plots"])
    drawn: dict = {}
    pipes: dict[str, hv.streams.Pipe] = {}
    shapes: dict[str, tuple | None] = {}
    made: dict[str, tuple] = {}  # name: (data, its objects), drawn once for all its panes

    def nth(name: str, i: int, data: dict):
        if made.get(name, (None,))[0] is not data:
            made[name] = (data, draw(name, data))
        return made[name][1][i]

    def push(state: dict) -> None:
        for name in names:
            data = state.get(name)
            if name in drawn and drawn[name] == data:
                continue
            drawn[name] = data
            try:
                if data is None:  # its read failed before it ever succeeded (logged by the session)
                    raise RuntimeError("its data could not be read; see the log")
                objs, shape = draw(name, data), layout(name, data)  # a failure shows here, not in Bokeh
                made[name] = (data, objs)
            except Exception as e:  # a plot never takes the page down
                objs, shape = [hv.Text(0, 0, f"plot unavailable: {e}")], None
            if shape is not None and shapes.get(name) == shape:
                # The same plots with new data: HoloViews updates their Bokeh sources in
                # place (no new figure built here nor laid out again in the browser).
                pipes[name].send(data)
                continue
            shapes[name] = shape
            if shape is not None:
                pipe = pipes[name] = hv.streams.Pipe(data=data)
                objs = [hv.DynamicMap(partial(nth, name, i), streams=[pipe]) for i in range(len(objs))]
            panes = [pn.pane.HoloViews(o, sizing_mode="stretch_width", linked_axes=False) for o in objs]
            col.objects = [p for p in col.objects if getattr(p, "_realm_plot", None) != name] + panes
            for p in panes:
                p._realm_plot = name

    view = View(PlotSession(realm, names), push, max(page_view.period, PLOT_SECONDS)).follow(page_view)
    view.refresh()
    poller.add(view)
    return col
