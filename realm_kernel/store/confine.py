"""The one check for an input that names a place on disk: it must stay under a root.

Every surface that takes a path from a person or a request (an export's destination, a
vault registration, an asset's path inside a zone, a zone's root, a member of a backup)
goes through `confine` or `check_relative` here, so the rules are the same everywhere:

- no NUL byte, no URL-encoded form (`%2e%2e`: nothing here decodes, so a `%XX` is either
  a mistake or an attempt to slip past a check further along), no `~` (nothing here
  expands it; a name starting with `~` would be taken literally and surprise someone);
- no `..` component, even one that would come back inside the root: a path that climbs
  is refused rather than interpreted;
- an absolute path only when it lies under the root;
- symlinks are resolved before the check, so a link inside the root that leads out is
  refused and a link that stays inside is fine.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

_ENCODED = re.compile(r"%[0-9A-Fa-f]{2}")


class PathRefused(ValueError):
    """A path input that would leave its root, or that cannot be read unambiguously."""


def _text(user_path: object, what: str) -> str:
    if not isinstance(user_path, str | os.PathLike):
        raise PathRefused(f"{what} must be a path, got {type(user_path).__name__}")
    text = os.fspath(user_path)
    if not isinstance(text, str):
        raise PathRefused(f"{what} must be a text path, got bytes")
    return text


def lexical_problem(text: str) -> str | None:
    """Why `text` is refused before it is even looked up, or None."""
    if not text.strip():
        return "it is empty"
    if "\x00" in text:
        return "it contains a NUL byte"
    if _ENCODED.search(text):
        return "it is URL-encoded (%XX); give the plain path"
    # A backslash is a separator to whoever wrote the path on Windows: treat it as one.
    parts = PurePosixPath(text.replace("\\", "/")).parts
    if any(part.startswith("~") for part in parts):
        return "it uses '~', which is not expanded here; give the full path"
    if ".." in parts:
        return "it climbs with '..'"
    return None


def check_relative(user_path: object, *, what: str = "path", root: str = "its root") -> str:
    """A relative posix path that stays inside whatever root it is joined to (no link is
    looked up: for a root this process cannot see, e.g. a remote zone)."""
    text = _text(user_path, what)
    why = lexical_problem(text)
    if why is None and PurePosixPath(text.replace("\\", "/")).is_absolute():
        why = "it is absolute; give a path relative to it"
    if why:
        raise PathRefused(f"{what} {text!r} refused: {why} (it must stay inside {root})")
    return PurePosixPath(text.replace("\\", "/")).as_posix()


def confine(root: str | os.PathLike, user_path: object, *, what: str = "path",
            allow_root: bool = False) -> Path:
    """`user_path` (relative to `root`, or absolute under it) as a resolved path under the
    resolved `root`; PathRefused naming the input and the root otherwise. `allow_root`
    accepts the root itself."""
    text = _text(user_path, what)
    base = Path(root).resolve()
    why = lexical_problem(text)
    if why is None:
        given = Path(text)
        named = given if given.is_absolute() else base / given
        full = named.resolve()  # follows every link that exists
        if full == base and not allow_root:
            why = "it is the root itself"
        elif not full.is_relative_to(base):
            why = ("it leads outside through a symlink" if named.is_relative_to(base)
                   else "it is outside")
    if why:
        raise PathRefused(f"{what} {text!r} refused: {why} (it must stay inside {base})")
    return full
