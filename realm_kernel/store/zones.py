"""What a vault zone may be: the rules checked when a zone is added and again each time one
is used (a zone recorded before these rules, or by hand in the ledger, gets no pass).

A zone is a root the vault copies assets to and from, so a bad root is a way to read or
write anywhere: a zone at `/` (or at any folder holding the realm home) would let a fetch
copy any file into the home, and a URL scheme that speaks HTTP would make the server send
requests to an address someone chose. Hence: storage schemes only, on an allow-list, and
a local root that neither holds the realm home nor sits inside it."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from .confine import lexical_problem

# Storage back-ends a zone may use (fsspec protocol names). Not http(s), webhdfs, ftp,
# or anything else that turns a path into a request to a chosen server.
SCHEMES = ("file", "sftp", "ssh", "s3", "s3a", "gs", "gcs", "az", "abfs", "abfss")


class ZoneRefused(ValueError):
    """A zone that would let the vault read or write outside where it should."""


def check_zone(url: object, home: Path) -> str:
    """The zone's kind ("local" for a folder, "fsspec" for a URL), or ZoneRefused."""
    if not isinstance(url, str) or not url.strip():
        raise ZoneRefused("a zone needs a url: an absolute local folder or a storage URL "
                          f"({', '.join(s + '://' for s in SCHEMES)})")
    if "://" in url:
        scheme = url.split("://", 1)[0].lower()
        if scheme not in SCHEMES:
            raise ZoneRefused(f"zone url {url!r}: scheme {scheme!r} is not allowed; "
                              f"allowed: {', '.join(SCHEMES)}")
        if scheme != "file":
            return "fsspec"
        folder = urlsplit(url).path
        kind = "fsspec"
    else:
        folder, kind = url, "local"
    why = lexical_problem(folder)
    if why:
        raise ZoneRefused(f"zone root {url!r} refused: {why}")
    if not Path(folder).is_absolute():
        raise ZoneRefused(f"a local zone needs an absolute folder, got {url!r}")
    root, home = Path(folder).resolve(), home.resolve()
    if root == Path(root.anchor):
        raise ZoneRefused(f"zone root {url!r} refused: it is the file system's root")
    if home.is_relative_to(root):
        raise ZoneRefused(f"zone root {url!r} refused: it holds the realm home {home}")
    if root.is_relative_to(home):
        raise ZoneRefused(f"zone root {url!r} refused: it is inside the realm home {home}")
    return kind

