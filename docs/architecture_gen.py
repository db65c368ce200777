"""Regenerates the generated parts of docs/architecture.md from the tree: the table of
every product module (its layer, its lines, the first sentence of its docstring) and
the lines per layer. Each part sits between `<!-- generated: NAME ... -->` and
`<!-- end generated -->`; the prose outside the markers is written by hand.

    python docs/architecture_gen.py           # rewrite the generated parts (`make docs`)
    python docs/architecture_gen.py --check   # list what is stale, exit 1 if anything is

Line counts drift with every edit, so --check lets a count be off by up to SLACK (10%,
and never less than SLACK_LINES lines) before it calls it stale; the set of modules,
their layers and their descriptions must match exactly. `make lint` runs the check
through tests/test_homes.py.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
# The layers have one home, the layer check (tests/test_layers.py); docs/ is no package,
# so the repository root goes on the path to reach it (as bench/common.py does).
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from tests.test_layers import LAYERS, PACKAGES, layer_of  # noqa: E402

SLACK = 0.10
SLACK_LINES = 10
SECTION = re.compile(r"(<!-- generated: (\w+)[^>]*-->\n)(.*?)(<!-- end generated -->)", re.S)
# Abbreviations whose period does not end a sentence.
SENTENCE_END = re.compile(r"(?<!e\.g)(?<!i\.e)(?<!etc)(?<!vs)\.(?=\s|$)")


@dataclass(frozen=True)
class Module:
    path: str  # from the repository root: realm_kernel/store/ledger.py, widgets/pages.py
    name: str  # its import name: realm_kernel.store.ledger, realm_widgets.pages
    layer: str  # the first prefix of its entry in LAYERS
    lines: int
    about: str  # the first sentence of its docstring
    tree: ast.Module

    @property
    def stem(self) -> str:
        """What a test file named for it is called after: the file's name, or a package's."""
        p = Path(self.path)
        return p.parent.name if p.name == "__init__.py" else p.stem


def first_sentence(doc: str | None) -> str:
    """The docstring's first sentence, on one line (its first paragraph if no period ends
    a sentence there)."""
    para = " ".join((doc or "").strip().split("\n\n")[0].split())
    end = SENTENCE_END.search(para)
    return para[:end.end()] if end else para.rstrip(":")


def modules(root: Path = ROOT) -> list[Module]:
    """Every product module (realm_kernel, realm_widgets, realm_skills), top layer first."""
    out = []
    for pkg, folder in PACKAGES.items():
        for f in sorted((root / folder).rglob("*.py")):
            parts = (pkg, *f.relative_to(root / folder).with_suffix("").parts)
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            text = f.read_text()
            tree = ast.parse(text, str(f))
            out.append(Module(f.relative_to(root).as_posix(), name, LAYERS[layer_of(name)][0],
                              len(text.splitlines()), first_sentence(ast.get_docstring(tree)), tree))
    return sorted(out, key=lambda m: (layer_of(m.name), m.path))


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def modules_table(mods: Iterable[Module]) -> list[str]:
    rows = ["| module | layer | lines | what it is |", "|---|---|---:|---|"]
    return rows + [f"| `{m.path}` | `{m.layer}` | {m.lines} | {cell(m.about)} |" for m in mods]


def figures_table(mods: Iterable[Module]) -> list[str]:
    per_layer: dict[str, list[Module]] = {}
    for m in mods:
        per_layer.setdefault(m.layer, []).append(m)
    rows = ["| layer | modules | lines |", "|---|---:|---:|"]
    rows += [f"| `{layer}` | {len(ms)} | {sum(m.lines for m in ms)} |" for layer, ms in per_layer.items()]
    everything = [m for ms in per_layer.values() for m in ms]
    return rows + [f"| all | {len(everything)} | {sum(m.lines for m in everything)} |"]


TABLES = {"modules": modules_table, "figures": figures_table}


def sections(doc: str) -> dict[str, str]:
    return {m.group(2): m.group(3) for m in SECTION.finditer(doc)}


def render(doc: str, mods: list[Module]) -> str:
    """The document with every generated part rewritten from `mods`."""
    return SECTION.sub(lambda m: m.group(1) + "\n".join(TABLES[m.group(2)](mods)) + "\n" + m.group(4), doc)


def table_rows(section: str) -> dict[str, list[str]]:
    """A generated table's rows by their first cell (the header row included)."""
    out = {}
    for line in section.splitlines():
        if line.startswith("| "):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            out[cells[0]] = cells
    return out


def drifted(column: str, shown: str, actual: str) -> bool:
    """A cell differs: a line count beyond the slack, anything else at all."""
    if column == "lines" and shown.isdigit() and actual.isdigit():
        return abs(int(shown) - int(actual)) > max(SLACK_LINES, SLACK * int(actual))
    return shown != actual


def stale(doc: str, mods: list[Module]) -> list[str]:
    """What the generated parts of `doc` say that the tree no longer does, one line each."""
    found = sections(doc)
    out = []
    for name, table in TABLES.items():
        if name not in found:
            out.append(f"no `<!-- generated: {name} -->` section")
            continue
        shown, actual = table_rows(found[name]), table_rows("\n".join(table(mods)))
        header = actual.pop(next(iter(actual)))
        out += [f"{name}: {key} is missing" for key in actual if key not in shown]
        out += [f"{name}: {key} is gone from the tree" for key in shown if key not in actual
                and key != header[0]]
        for key, cells in actual.items():
            if key in shown:
                out += [f"{name}: {key}: {col} says {old!r}, the tree {new!r}"
                        for col, old, new in zip(header, shown[key], cells, strict=False)
                        if drifted(col, old, new)]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="list what is stale, exit 1 if anything is")
    args = parser.parse_args(argv)
    doc, mods = DOC.read_text(), modules()
    missing = [name for name in TABLES if name not in sections(doc)]
    if missing and not args.check:
        print(f"{DOC.relative_to(ROOT)} has no section for {missing}: put `<!-- generated: NAME -->` "
              "and `<!-- end generated -->` where each belongs")
        return 1
    if args.check:
        found = stale(doc, mods)
        for line in found:
            print(line)
        if found:
            print(f"{DOC.relative_to(ROOT)} is stale ({len(found)}): run `python docs/architecture_gen.py`")
        return 1 if found else 0
    new = render(doc, mods)
    if new != doc:
        DOC.write_text(new)
    print(f"{DOC.relative_to(ROOT)}: {len(mods)} modules, {'rewritten' if new != doc else 'unchanged'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
