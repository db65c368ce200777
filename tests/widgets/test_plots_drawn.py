"""What the plots draw (widgets/plots.py), read back from the HoloViews objects: the eval
accuracy by level (a layer per skill, labelled, on a 0-1 axis), each skill's per-primitive
heatmap (steps as labels, its height growing with the primitives), the loss and tokens/s
curves, and which plots a page draws."""

from __future__ import annotations

import pytest

from realm_widgets import plots

EVALS = [{"skill": "bin", "level": 1, "accuracy": 0.5, "step": 10},
         {"skill": "sy", "level": 2, "accuracy": 0.25, "step": 20},
         {"skill": "bin", "level": 2, "accuracy": 0.75, "step": 30}]


@pytest.fixture(autouse=True)
def bokeh():
    plots._extension(False)  # options need a plotting extension loaded


def opts(element) -> dict:
    return element.opts.get().kwargs


def test_accuracy_by_level_has_a_labelled_layer_per_skill():
    overlay = plots.accuracy_plot({"evals": EVALS})
    layers = list(overlay)
    assert [e.label for e in layers] == ["BIN", "SY"]
    assert [(str(e.kdims[0]), str(e.vdims[0])) for e in layers] == [("level", "accuracy")] * 2
    assert [e.data.values.tolist() for e in layers] == [[[1, 0.5], [2, 0.75]], [[2, 0.25]]]
    assert opts(layers[0])["ylim"] == (0, 1.05) and opts(layers[0])["size"] == 7
    o = opts(overlay)
    assert (o["title"], o["height"], o["responsive"], o["show_grid"]) == \
        ("Eval accuracy by level", 240, True, True)
    # No eval yet: one empty layer on the same axes.
    empty = list(plots.accuracy_plot({"evals": []}))
    assert [(str(e.kdims[0]), str(e.vdims[0]), len(e)) for e in empty] == [("level", "accuracy", 0)]


def test_heatmap_per_primitive_over_checkpoints():
    h = plots.heatmap("bin", {"cells": [[10, "p1", 0.5], [20, "p2", 1.0]], "primitives": ["p1", "p2"]})
    assert [str(d) for d in h.kdims] == ["checkpoint step", "primitive"] and str(h.vdims[0]) == "accuracy"
    assert h.data.values.tolist() == [["10", "p1", 0.5], ["20", "p2", 1.0]]  # steps as labels
    o = opts(h)
    assert (o["title"], o["height"], o["clim"], o["cmap"], o["xrotation"]) == \
        ("BIN: accuracy per primitive", 60 + 26 * 3, (0, 1), "RdYlGn", 45)
    assert o["colorbar"] and o["tools"] == ["hover"] and o["responsive"]
    five = plots.heatmap("sy", {"cells": [[1, "a", 0.0]], "primitives": list("abcde")})
    assert opts(five)["height"] == 60 + 26 * 5 and opts(five)["title"] == "SY: accuracy per primitive"


def test_loss_and_tokens_curves():
    d = {"loss": [[1, 2.0], [2, 1.5]], "val_loss": [[2, 1.7]], "tokens_per_s": [[1, 900.0]],
         "checkpoints": [[2, 1.5]]}
    loss = plots.loss_plot(d)
    assert [e.label for e in loss] == ["loss", "val loss", "checkpoint"]
    assert [e.data.values.tolist() for e in loss] == [[[1, 2.0], [2, 1.5]], [[2, 1.7]], [[2, 1.5]]]
    assert [(str(e.kdims[0]), str(e.vdims[0])) for e in loss] == [("step", "loss")] * 3
    o = opts(loss)
    assert (o["title"], o["responsive"], o["height"], o["legend_position"], o["show_grid"]) == \
        ("Loss by step", True, 260, "top_right", True)
    tokens = plots.tokens_plot(d)
    assert (str(tokens.kdims[0]), str(tokens.vdims[0])) == ("step", "tokens/s")
    o = opts(tokens)
    assert (o["title"], o["responsive"], o["height"], o["color"], o["show_grid"]) == \
        ("Tokens per second", True, 200, "#2e9d5b", True)


def test_each_page_draws_its_plots():
    guild = {"evals": EVALS, "heatmaps": {"bin": {"cells": [[1, "a", 1.0]], "primitives": ["a"]},
                                          "sy": {"cells": [], "primitives": []}}}
    drawn = plots.draw("guild", guild)
    assert len(drawn) == 2 and opts(drawn[1])["title"] == "BIN: accuracy per primitive"  # sy has no cells
    assert plots.layout("guild", guild) == ("bin",) and plots.layout("battle", {}) == ("battle",)
    battle = plots.draw("battle", {"loss": [], "val_loss": [], "tokens_per_s": [], "checkpoints": []})
    assert [opts(p)["title"] for p in battle] == ["Loss by step", "Tokens per second"]


def test_the_battle_marks_only_checkpoints_with_a_loss(tmp_path):
    from realm_kernel.api import Realm
    realm = Realm(tmp_path / "realm")
    realm.ledger.append("checkpoints", [{"step": 1, "name": "checkpoint-1", "loss": None},
                                        {"step": 2, "name": "checkpoint-2", "loss": 1.5}])
    realm.ledger.append("metrics", [{"step": 2, "loss": 1.5, "tokens_per_s": 900.0}])
    d = plots.battle_data(realm)
    assert d["checkpoints"] == [[2, 1.5]]
    assert d["loss"] == [[2, 1.5]] and d["tokens_per_s"] == [[2, 900.0]] and d["val_loss"] == []
