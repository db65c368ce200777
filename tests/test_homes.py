"""Every product module has its row in docs/architecture.md's module table (the generated
parts are current) and a test home. `make lint` runs this file as a script; the suite
runs it as a test.

    python tests/test_homes.py     # prints every module without a home and every stale
                                   # line of docs/architecture.md, exit 1 if any

A module's test home is a test file named for it anywhere under tests/
(`tests/**/test_<module>.py`; a package's __init__.py goes by the package's name) that
imports it, names its dotted path (a `-m` argument, a monkeypatch target) or uses a
function or class only it defines; or the test files tests/homes.toml names for it (by
file name, found anywhere under tests/, or by a path under tests/), which may also name
it by its short name, or say through what they reach it (`via`: a command, a route).
So the check holds for a flat tests/ and for one in package folders alike. A package's
__init__.py holding nothing but a docstring and dunder assignments (`__version__`) needs
no home. homes.toml's `untested` names the modules with no test yet, so the gap shows;
an entry there that gains a home, or any entry naming what no longer exists, fails.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script, tests/ is on the path and not its parent
    sys.path.insert(0, str(ROOT))
from tests.test_layers import imports_of  # noqa: E402


def load_generator():
    """docs/architecture_gen.py: docs/ is no package, so it is loaded from its file."""
    spec = importlib.util.spec_from_file_location("architecture_gen", ROOT / "docs" / "architecture_gen.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


gen = load_generator()
Module = gen.Module


def needs_home(module: Module) -> bool:
    """A package's __init__.py with only a docstring and dunder assignments is exempt."""
    if not module.path.endswith("__init__.py"):
        return True
    body = module.tree.body[1:] if ast.get_docstring(module.tree) else module.tree.body
    return not all(isinstance(node, ast.ImportFrom) and node.module == "__future__"
                   or isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) and t.id.startswith("__")
                                                           for t in node.targets)
                   for node in body)


def find_test_files(tests: Path) -> dict[str, Path]:
    """Every test file under tests/, by its path under tests/ (posix)."""
    return {f.relative_to(tests).as_posix(): f for f in sorted(tests.rglob("test_*.py"))}


def distinctive(name: str) -> bool:
    """A compound public name (build_page, HeroProfile): a plain word (`load`, `count`,
    `Home`) says little about which module a test exercises."""
    return not name.startswith("_") and ("_" in name or sum(c.isupper() for c in name) > 1)


def own_names(mods: list[Module]) -> dict[str, set[str]]:
    """Per module, the distinctive top-level functions and classes no other module defines."""
    defined = {m.name: {n.name for n in m.tree.body
                        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
                        and distinctive(n.name)} for m in mods}
    count: dict[str, int] = {}
    for names in defined.values():
        for n in names:
            count[n] = count.get(n, 0) + 1
    return {m: {n for n in names if count[n] == 1} for m, names in defined.items()}


class Mentions:
    """Which product modules one test file mentions: `names` (a test file named for the
    module must) imports it, names its dotted path or file, or uses a distinctive function
    or class only it defines; `says` (enough for an entry in homes.toml, which a person
    wrote) also takes its short name as a word or in the test file's name, as end-to-end
    tests and registries name a module (a passive by its name, test_checkpoint_keeper.py)."""

    def __init__(self, path: Path, mods: list[Module], own: dict[str, set[str]]):
        self.path, self.text = path, path.read_text()
        tree = ast.parse(self.text, str(path))
        self.imported = imports_of("tests." + path.stem, path, {m.name: m.path for m in mods})
        self.identifiers = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {
            n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)} | {
            a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
        self.own = own

    def names(self, module: Module) -> bool:
        dotted = re.compile(re.escape(module.name) + r"(?!\w|\.\w)")
        return (module.name in self.imported or module.path in self.text
                or bool(dotted.search(self.text)) or bool(self.own[module.name] & self.identifiers))

    def says(self, module: Module) -> bool:
        return (self.names(module) or module.stem in self.path.stem
                or bool(re.search(rf"\b{re.escape(module.stem)}\b", self.text)))


def read_map(tests: Path) -> tuple[dict[str, list[str] | dict], list[str]]:
    """tests/homes.toml: its [homes] and its untested list."""
    path = tests / "homes.toml"
    config = tomllib.loads(path.read_text()) if path.exists() else {}
    return config.get("homes", {}), config.get("untested", [])


def home_problems(root: Path, mods: list[Module]) -> list[str]:
    """Every module without a test home and every wrong line of tests/homes.toml."""
    tests = root / "tests"
    files = find_test_files(tests)
    homes, untested = read_map(tests)
    own = own_names(mods)
    mentions: dict[str, Mentions] = {}

    def mentions_of(rel: str) -> Mentions:
        if rel not in mentions:
            mentions[rel] = Mentions(files[rel], mods, own)
        return mentions[rel]

    by_path = {m.path: m for m in mods}
    out = [f"tests/homes.toml: {p} is no product module" for p in [*homes, *untested] if p not in by_path]
    out += [f"tests/homes.toml: {p} is both in [homes] and untested" for p in homes if p in untested]
    for m in mods:
        if not needs_home(m):
            continue
        named = [rel for rel in files if Path(rel).name == f"test_{m.stem}.py"]
        found = [rel for rel in named if mentions_of(rel).names(m)]
        entry = homes.get(m.path, [])
        via = entry.get("via") if isinstance(entry, dict) else None
        for name in entry.get("files", []) if isinstance(entry, dict) else entry:
            matches = [rel for rel in files if rel == name or "/" not in name and Path(rel).name == name]
            if len(matches) != 1:
                out.append(f"tests/homes.toml: {m.path}: {name} names {len(matches)} test files "
                           f"{matches}, not one")
            elif via is not None and via not in mentions_of(matches[0]).text:
                out.append(f"tests/homes.toml: {m.path}: tests/{matches[0]} does not contain {via!r}")
            elif via is None and not mentions_of(matches[0]).says(m):
                out.append(f"tests/homes.toml: {m.path}: tests/{matches[0]} does not mention it "
                           f"(neither {m.name} nor {m.stem!r} nor a function or class only it defines)")
            else:
                found.append(matches[0])
        if m.path in untested:
            if found:
                out.append(f"tests/homes.toml: {m.path} is listed untested but tested in "
                           f"{', '.join('tests/' + f for f in found)}: drop it from untested")
        elif not found:
            hint = (f"tests/{', tests/'.join(named)} is named for it but does not mention it" if named
                    else f"no tests/**/test_{m.stem}.py")
            out.append(f"{m.path}: no test home ({hint}; name the test files that exercise it in "
                       "tests/homes.toml)")
    return out


def problems(root: Path = ROOT) -> list[str]:
    mods = gen.modules(root)
    doc = root / "docs" / "architecture.md"
    stale = [f"docs/architecture.md: {line}" for line in gen.stale(doc.read_text(), mods)]
    if stale:
        stale.append("docs/architecture.md is stale: run `make docs` (python docs/architecture_gen.py)")
    return home_problems(root, mods) + stale


def test_every_module_is_in_the_architecture_table_and_has_a_test_home() -> None:
    assert problems() == []


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


PRODUCT = {
    "realm_kernel/__init__.py": '"""The face."""\n__version__ = "1"\n',
    "realm_kernel/store/__init__.py": '"""Storage."""\n',
    "realm_kernel/store/ledger.py": '"""The ledger. More."""\ndef append_rows():\n    pass\n',
    "realm_kernel/store/hosts.py": '"""The host registry."""\n',
    "realm_kernel/oracle/__init__.py": '"""Inference."""\n',
    "realm_kernel/oracle/hosts.py": '"""Inference hosts."""\ndef inference_hosts():\n    pass\n',
    "realm_kernel/services/launcher.py": '"""`realm up`, e.g. detached."""\n',
    "widgets/__init__.py": '"""Widgets."""\nfrom .feed import WIDGETS\n',
    "widgets/feed.py": '"""The widget files."""\nWIDGETS = {}\n',
    "skills/__init__.py": '"""Skills."""\n',
    "docs/architecture.md": "# A\n<!-- generated: figures -->\n<!-- end generated -->\n"
                            "prose\n<!-- generated: modules -->\nold\n<!-- end generated -->\n",
}
HOMES = """untested = []
[homes]
"widgets/__init__.py" = ["test_tavern.py"]
"widgets/feed.py" = ["widgets/test_tavern.py"]
"realm_kernel/services/launcher.py" = { files = ["test_cli.py"], via = 'realm("up"' }
"""
TESTS = {"test_ledger.py": "from realm_kernel.store.ledger import append_rows\n",
         "test_hosts.py": "from realm_kernel.store import hosts\n",
         "test_tavern.py": "import realm_widgets\nfrom realm_widgets.feed import WIDGETS\n",
         "test_cli.py": 'realm("up", "--headless")\n'}


def test_the_check_holds_for_flat_and_foldered_tests_and_names_every_gap(tmp_path) -> None:
    write(tmp_path, PRODUCT)
    doc = tmp_path / "docs" / "architecture.md"
    mods = gen.modules(tmp_path)
    doc.write_text(gen.render(doc.read_text(), mods))
    text = doc.read_text()
    assert "| `realm_kernel/store/ledger.py` | `realm_kernel.store` | 3 | The ledger. |" in text
    assert "| `realm_kernel.services` | 1 | `realm up`, e.g. detached. |" in text  # e.g. ends no sentence
    assert "prose" in text and "old" not in text
    write(tmp_path, {"tests/homes.toml": HOMES.replace("widgets/test_tavern.py", "test_tavern.py"),
                     **{f"tests/{name}": text for name, text in TESTS.items()}})
    # Flat: test_hosts.py is the store's; the Oracle's hosts has none (package inits with
    # only a docstring and __version__ need none; widgets/__init__.py imports, so it does).
    assert problems(tmp_path) == [
        "realm_kernel/oracle/hosts.py: no test home (tests/test_hosts.py is named for it but does not "
        "mention it; name the test files that exercise it in tests/homes.toml)"]
    # In package folders, by file name or by path under tests/.
    for name in TESTS:
        (tmp_path / "tests" / name).unlink()
    write(tmp_path, {"tests/homes.toml": HOMES, "tests/store/test_ledger.py": TESTS["test_ledger.py"],
                     "tests/store/test_hosts.py": TESTS["test_hosts.py"],
                     "tests/oracle/test_hosts.py": "from realm_kernel.oracle.hosts import inference_hosts\n",
                     "tests/widgets/test_tavern.py": TESTS["test_tavern.py"],
                     "tests/cli/test_cli.py": TESTS["test_cli.py"]})
    assert problems(tmp_path) == []
    # Every wrong line of the map, and a stale doc.
    wrong = (HOMES.replace("untested = []", 'untested = ["realm_kernel/store/ledger.py"]')
             .replace('realm("up"', "realm up").replace('["test_tavern.py"]', '["test_nothing.py"]')
             + '"realm_kernel/store/gone.py" = ["test_ledger.py"]\n')
    write(tmp_path, {"tests/homes.toml": wrong,
                     "realm_kernel/store/vault.py": '"""The vault."""\n' + "x = 1\n" * 40})
    assert problems(tmp_path) == [
        "tests/homes.toml: realm_kernel/store/gone.py is no product module",
        "tests/homes.toml: widgets/__init__.py: test_nothing.py names 0 test files [], not one",
        "widgets/__init__.py: no test home (no tests/**/test_widgets.py; name the test files that "
        "exercise it in tests/homes.toml)",
        "tests/homes.toml: realm_kernel/services/launcher.py: tests/cli/test_cli.py does not contain "
        "'realm up'",
        "realm_kernel/services/launcher.py: no test home (no tests/**/test_launcher.py; name the test files "
        "that exercise it in tests/homes.toml)",
        "tests/homes.toml: realm_kernel/store/ledger.py is listed untested but tested in "
        "tests/store/test_ledger.py: drop it from untested",
        "realm_kernel/store/vault.py: no test home (no tests/**/test_vault.py; name the test files that "
        "exercise it in tests/homes.toml)",
        "docs/architecture.md: modules: `realm_kernel/store/vault.py` is missing",
        "docs/architecture.md: figures: `realm_kernel.store`: modules says '3', the tree '4'",
        "docs/architecture.md: figures: `realm_kernel.store`: lines says '5', the tree '46'",
        "docs/architecture.md: figures: all: modules says '10', the tree '11'",
        "docs/architecture.md: figures: all: lines says '17', the tree '58'",
        "docs/architecture.md is stale: run `make docs` (python docs/architecture_gen.py)"]


def test_a_line_count_may_drift_within_the_slack() -> None:
    assert not gen.drifted("lines", "100", "109") and not gen.drifted("lines", "3", "12")
    assert gen.drifted("lines", "100", "112") and gen.drifted("modules", "3", "4")
    assert gen.first_sentence("Quests: a queue, e.g. moves. More.\n\nBody.") == "Quests: a queue, e.g. moves."
    assert gen.first_sentence("The whole Tavern at its route:\n\n    code") == "The whole Tavern at its route"


if __name__ == "__main__":
    found = problems()
    for p in found:
        print(p)
    print(f"homes: {len(found)} problem(s) in {len(gen.modules())} modules, "
          f"{len(read_map(ROOT / 'tests')[1])} listed untested in tests/homes.toml")
    sys.exit(1 if found else 0)
