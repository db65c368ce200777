"""Inference hosts for the Oracle: the host registry's hosts (hosts.toml in the realm
home, see realm_kernel/store/hosts.py) with the "inference" role and an `inference` service,
the URL of an OpenAI-compatible server (vLLM, or any server with /v1/models and
/v1/chat/completions):

    [hosts.gpu1]
    host = "10.0.0.7"
    roles = ["inference"]
    token_env = "GPU1_API_KEY"          # optional: sent as a Bearer token (vllm --api-key)
    services = { inference = { port = 8000 } }
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..store.hosts import HostRegistry

SERVICE = "inference"


@dataclass(frozen=True)
class InferenceHost:
    name: str
    url: str  # base URL without /v1
    token: str | None = None


def inference_hosts(home: Path) -> dict[str, InferenceHost]:
    out = {}
    for name, h in HostRegistry.load(home).with_role(SERVICE):
        if SERVICE not in h.services:
            continue
        token = os.environ.get(h.token_env) if h.token_env else None
        out[name] = InferenceHost(name, h.url(SERVICE), token)
    return out
