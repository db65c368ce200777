"""What a REST request brings, checked once before any handler uses it: JSON bodies and
the integers in paths and query strings.

Malformed input of any class raises `BadInput` (a ValueError, so the handlers answer
400) with a message that says what is wrong and where: bodies nested deeper than
MAX_DEPTH (a 10,000-level body would otherwise end in Python's RecursionError), bytes
that are not JSON, a top level that is not an object, NaN and +-Infinity (JSON has
neither; Python's json accepts them), floats beyond the double range (1e400 parses as
inf), integers beyond 64 bits (DuckDB and torch take no more; 5,000 digits would hit
Python's int() limit), and path or query integers written with non-ASCII digits
(`str.isdigit` accepts '٣' and '²'; `int` turns the first into 3 and fails on the
second).
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 32
INT_MAX = 2**63 - 1


class BadInput(ValueError):
    """Malformed request input; the message names what and where."""


def shown(text: str, limit: int = 40) -> str:
    """`text` for an error message: repr'd, and cut when long (the input may be huge)."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _constant(name: str) -> Any:
    raise BadInput(f"request body has {name}, which is not a JSON number (only finite numbers)")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadInput(f"request body has the number {shown(text)}, out of range for a double")
    return value


def _int(text: str) -> int:
    # Length first: int() of thousands of digits is slow, and over 4300 it raises.
    if len(text.lstrip("-")) > 19 or abs(value := int(text)) > INT_MAX:
        raise BadInput(f"request body has the integer {shown(text)}, out of range "
                       f"(integers are at most {INT_MAX} in size)")
    return value


def depth(value: Any) -> int:
    """How deeply lists and objects nest in a parsed JSON value (a scalar is 0)."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, level = todo.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is not None:
            deepest = max(deepest, level)
            todo.extend((c, level + 1) for c in children)
    return deepest


def json_object(raw: bytes) -> dict:
    """A request body as a JSON object ({} when empty), or BadInput saying why not."""
    if not raw.strip():
        return {}
    try:
        text = raw.decode("utf-8")
        body = json.loads(text, parse_constant=_constant, parse_float=_float, parse_int=_int)
    except RecursionError:
        raise BadInput(f"request body is nested too deeply (over {MAX_DEPTH} levels)") from None
    except UnicodeDecodeError as e:
        raise BadInput(f"request body is not JSON: not UTF-8 ({e.reason} at byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise BadInput(f"request body is not JSON: {e}") from None
    if depth(body) > MAX_DEPTH:
        raise BadInput(f"request body is nested too deeply (over {MAX_DEPTH} levels)")
    if not isinstance(body, dict):
        raise BadInput(f"request body must be a JSON object, got {type(body).__name__}")
    return body


def only(body: dict, allowed: set[str] | frozenset[str], where: str) -> dict:
    """`body` when it has no field outside `allowed`; else BadInput naming the strays (a
    misspelt setting would otherwise be ignored without a word)."""
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise BadInput(f"unknown field(s) {unknown} in the body of {where}; "
                       f"expected {', '.join(sorted(allowed))}")
    return body


def whole_number(text: str, what: str, hi: int = INT_MAX) -> int:
    """A non-negative integer written in ASCII digits (a path segment or query value),
    at most `hi`, or BadInput naming `what`."""
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(hi)) or int(text) > hi:
        raise BadInput(f"{what} must be a non-negative integer (ASCII digits, at most {hi}), "
                       f"got {shown(text)}")
    return int(text)
