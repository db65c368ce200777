"""The README glossary covers every game word the Tavern shows: each page's title (from
widgets/pages.py's PAGES), each place the widgets name "The X", and the maintained list
below, whose words must still appear in the UI (so a word the UI drops leaves the list)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WIDGETS = ROOT / "widgets"
UI_FILES = [*sorted(WIDGETS.glob("*.js")), WIDGETS / "pages.py", WIDGETS / "app.py"]

# Game words the widgets show (buttons, headings, stats, toasts), each worth a line for a
# newcomer. Plain words (Upload, Delete, Loss, Step) are not game words and stay out.
UI_WORDS = ("DIO", "quest", "battle", "XP", "level", "ATK", "DEF", "ACC", "gold", "skill",
            "primitive", "passive", "forgetting watch", "probe", "review", "sparring",
            "targeted sparring", "champion", "promote", "achievement", "zone", "duel",
            "Ask DIO", "curriculum", "Task Master", "Quest board")
# Game words no widget's source holds: the docs, the CLI and the events use them, or the
# pages show them as data (the battle state "yielding").
DOC_WORDS = ("Arena", "practice", "Weaver", "ledger", "VaultKeeper", "yielding")
# Page titles that are no game words.
PLAIN_TITLES = {"Settings"}


def glossary_terms() -> list[str]:
    """The bold terms of the README's glossary table."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("### Glossary", 1)[1].split("\n#", 1)[0]
    return [t.lower() for t in re.findall(r"\*\*([^*]+)\*\*", section)]


def page_titles() -> list[str]:
    """The titles of the Page(...) entries in widgets/pages.py, read without importing it."""
    tree = ast.parse((WIDGETS / "pages.py").read_text(encoding="utf-8"))
    return [node.args[0].value for node in ast.walk(tree)
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Page"
            and node.args and isinstance(node.args[0], ast.Constant)]


def named_places() -> set[str]:
    """"The Vault", "The Guild", ...: the places the widgets' headings name."""
    text = "\n".join(f.read_text(encoding="utf-8") for f in UI_FILES if f.suffix == ".js")
    return set(re.findall(r"[\"`][^\"`\n]*?\bThe ([A-Z][a-z]+(?: [A-Z][a-z]+)*)", text))


def covered(word: str, terms: list[str]) -> bool:
    """`word` (or its singular) is a whole word or phrase of some glossary term."""
    forms = {word.lower(), word.lower().removesuffix("s")}
    return any(re.search(rf"(?<![\w-]){re.escape(f)}(?![\w-])", t) for f in forms for t in terms)


def test_page_titles_and_named_places_are_found():
    titles = page_titles()
    assert {"Tavern", "Quests", "Oracle", "Vault", "Guild", "Scheduler"} <= set(titles), titles
    assert {"Vault", "Oracle", "Guild", "Scheduler"} <= named_places()


def test_every_listed_ui_word_is_still_shown_by_the_ui():
    ui = "\n".join(f.read_text(encoding="utf-8") for f in UI_FILES).lower()
    gone = [w for w in UI_WORDS if w.lower() not in ui]
    assert not gone, f"no widget shows {gone} any more: drop them from UI_WORDS"


def test_the_readme_glossary_covers_every_game_word_the_ui_shows():
    terms = glossary_terms()
    words = ({t for t in page_titles() if t not in PLAIN_TITLES} | named_places()
             | set(UI_WORDS) | set(DOC_WORDS))
    missing = sorted(w for w in words if not covered(w, terms))
    assert not missing, f"README.md's glossary lacks {missing}"
