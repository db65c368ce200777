"""Inference hosts for the Oracle, read from `hosts.toml` in the realm home.

The same file and format as the host registry (`realm_kernel/hosts.py` on another
branch), of which the Oracle needs only this: hosts with the "inference" role and an
`inference` service, the URL of an OpenAI-compatible server (vLLM, or any server with
/v1/models and /v1/chat/completions):

    [hosts.gpu1]
    host = "10.0.0.7"
    roles = ["inference"]
    token_env = "GPU1_API_KEY"          # optional: sent as a Bearer token (vllm --api-key)
    services = { inference = { port = 8000 } }
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .config import ConfigError

SERVICE = "inference"


@dataclass(frozen=True)
class InferenceHost:
    name: str
    url: str  # base URL without /v1
    token: str | None = None


def _url(service: dict, host: str) -> str:
    port, path = service.get("port"), str(service.get("path", "")).rstrip("/")
    if not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError(f"port must be 1-65535, got {port!r}")
    return f"{service.get('scheme', 'http')}://{host}:{port}{path}"


def inference_hosts(home: Path) -> dict[str, InferenceHost]:
    path = Path(home) / "hosts.toml"
    if not path.exists():
        return {}
    try:
        hosts = tomllib.loads(path.read_text(encoding="utf-8")).get("hosts", {})
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not readable: {e}") from e
    out = {}
    for name, h in hosts.items():
        roles = list(h.get("roles", [])) + ([h["role"]] if h.get("role") else [])
        service = h.get("services", {}).get(SERVICE)
        if SERVICE not in roles or service is None:
            continue
        try:
            url = _url(service, h.get("host", "127.0.0.1"))
        except ValueError as e:
            raise ConfigError(f"{path}: hosts.{name}.services.{SERVICE}: {e}") from e
        token = os.environ.get(h["token_env"]) if h.get("token_env") else None
        out[name] = InferenceHost(name, url, token)
    return out
