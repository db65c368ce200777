"""Inference hosts for the Oracle: the host registry's hosts (hosts.toml in the realm
home, see realm_kernel/store/hosts.py) with the "inference" role and an `inference` service,
the URL of an OpenAI-compatible server (vLLM, or any server with /v1/models and
/v1/chat/completions):

    [hosts.gpu1]
    host = "10.0.0.7"
    roles = ["inference"]
    token_env = "GPU1_API_KEY"          # optional: sent as a Bearer token (vllm --api-key)
    services = { inference = { port = 8000 } }

or another realm server (its Jupyter server with the realm extension), which loads the
checkpoint asked for by step (oracle/realm_host.py):

    [hosts.gpu2]
    host = "10.0.0.8"
    roles = ["inference"]
    token_env = "GPU2_REALM_TOKEN"      # that server's Jupyter token
    services = { realm = { port = 8888, path = "/realm/api" } }
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..store.hosts import HostRegistry

SERVICE = "inference"
REALM = "realm"  # the service of a realm server


@dataclass(frozen=True)
class InferenceHost:
    name: str
    url: str  # base URL without /v1 (an OpenAI server), or the realm API's (a realm server)
    token: str | None = None
    kind: str = "openai"  # or "realm"


def inference_hosts(home: Path) -> dict[str, InferenceHost]:
    out = {}
    registry = HostRegistry.load(home)
    for name, h in registry.with_role(SERVICE):
        if name == "local":  # this realm's own pool (and the default registry's one host)
            continue
        token = h.token()
        if SERVICE in h.services:
            out[name] = InferenceHost(name, h.url(SERVICE), token)
        elif REALM in h.services:
            out[name] = InferenceHost(name, h.url(REALM), token, REALM)
    return out
