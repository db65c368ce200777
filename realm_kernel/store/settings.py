"""realm.toml as editable fields: describe the config models for a form, validate a
change set with the same pydantic models `load_config()` uses, write the file atomically."""

from __future__ import annotations

import tomllib
import typing
from typing import Any

import tomli_w
from annotated_types import Ge, Gt, Le, Lt
from pydantic import ValidationError

from .config import RealmConfig
from .paths import RealmPaths, atomic_write_text

# Changing these changes what a checkpoint means (or which model trains), or where every
# checkpoint is copied to (vault.ship_to): ask first.
CRITICAL = frozenset({"hero.base_model", "hero.profile", "training.max_length", "training.pack_length",
                      "training.dtype", "training.optimizer", "training.packing", "vault.ship_to"})


def _kind(annotation: Any) -> tuple[str, list | None]:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return "choice", list(typing.get_args(annotation))
    if origin is list:
        return "list", None
    # Tables (e.g. a dict of per-skill settings) are edited as JSON.
    return {bool: "bool", int: "int", float: "float", str: "str"}.get(annotation, "json"), None


def describe(cfg: RealmConfig) -> list[dict]:
    """One dict per field: key ("section.name"), value, default, kind, choices, bounds, and
    source (for a hero-profile key: the profile, realm.toml or the environment)."""
    out = []
    dumped = cfg.model_dump(mode="json")  # JSON-able values (nested models become dicts)
    sources = cfg.resolved_profile.sources  # where each hero-profile default came from
    for section in RealmConfig.model_fields:
        model = getattr(cfg, section)
        for name, f in type(model).model_fields.items():
            kind, choices = _kind(f.annotation)
            bounds: dict[str, float] = {}
            for m in f.metadata:
                for cls, key in ((Ge, "ge"), (Gt, "gt"), (Le, "le"), (Lt, "lt")):
                    if isinstance(m, cls):
                        bounds[key] = getattr(m, key)
            key = f"{section}.{name}"
            out.append({"key": key, "section": section, "name": name, "kind": kind,
                        "value": dumped[section][name], "default": dumped_default(f), "choices": choices,
                        "bounds": bounds, "critical": key in CRITICAL, "source": sources.get(key)})
    return out


def _read(paths: RealmPaths) -> dict:
    path = paths.config_file
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return {}  # a broken file is replaced by the valid one the user saves


def validate(data: dict) -> tuple[RealmConfig | None, dict[str, str]]:
    try:
        return RealmConfig.model_validate(data), {}
    except ValidationError as e:
        return None, {".".join(str(p) for p in err["loc"]): f"{err['msg']} (got {err.get('input')!r})"
                      for err in e.errors()}


def save(paths: RealmPaths, changes: dict[str, Any], confirm: bool = False) -> dict:
    """Apply {"section.key": value}; errors name each bad key; critical keys need confirm."""
    data = _read(paths)
    errors: dict[str, str] = {}
    for key, value in changes.items():
        section, _, name = key.partition(".")
        if section not in RealmConfig.model_fields or not name:
            errors[key] = "unknown setting"
            continue
        data.setdefault(section, {})[name] = value
    cfg, problems = validate(data)
    errors.update(problems)
    if errors:
        return {"ok": False, "errors": errors}
    before, _ = validate(_read(paths))
    current = {f["key"]: f["value"] for f in describe(before or RealmConfig())}
    new = cfg.model_dump(mode="json")
    critical = sorted(k for k in changes if k in CRITICAL and current.get(k) != _value(new, k))
    if critical and not confirm:
        return {"ok": False, "needs_confirmation": critical}
    # Only the keys the file had or the user changed are written, with validated values.
    out = {s: {n: new[s][n] for n in names} for s, names in data.items()}
    atomic_write_text(paths.config_file, tomli_w.dumps(out))
    return {"ok": True, "changed": sorted(changes), "path": str(paths.config_file)}


def _value(dumped: dict, key: str) -> Any:
    section, _, name = key.partition(".")
    return dumped[section][name]


def dumped_default(f: Any) -> Any:
    """A field's default as JSON (a default_factory is called)."""
    from pydantic_core import to_jsonable_python
    return to_jsonable_python(f.get_default(call_default_factory=True))


def preview(paths: RealmPaths, changes: dict[str, Any]) -> dict[str, str]:
    """The errors saving these changes would give (nothing is written)."""
    data = _read(paths)
    for key, value in changes.items():
        section, _, name = key.partition(".")
        data.setdefault(section, {})[name] = value
    return validate(data)[1]
