import pytest

from realm_kernel.store.config import ConfigError
from realm_kernel.store.hosts import HostRegistry, get_service_url, is_trainer_local
from realm_kernel.store.remote_ledger import RemoteLedgerClient, get_ledger_client


def test_without_a_file_the_realm_is_one_machine(tmp_path):
    reg = HostRegistry.load(tmp_path)
    assert reg.source is None and reg.is_trainer_local()
    assert get_service_url("ledger", tmp_path) == "http://127.0.0.1:8888/realm/api/ledger"
    assert type(get_ledger_client(tmp_path)).__name__ == "CheckpointLedger"


def test_hosts_toml_roles_services_and_remote_trainer(tmp_path, monkeypatch):
    (tmp_path / "hosts.toml").write_text("""
[hosts.trainer]
name = "Training Server"
host = "trainer.example"
role = "trainer"
token_env = "TRAINER_TOKEN"
[hosts.trainer.services]
ledger = { port = 8888, path = "/realm/api/ledger" }
vault = { port = 8888, path = "/realm/api" }

[hosts.oracle]
host = "inference.example"
roles = ["inference"]
services = { inference = { port = 8765 } }
""")
    reg = HostRegistry.load(tmp_path)
    assert reg.get_host("trainer").all_roles() == ["trainer"]
    assert reg.get_service_url("inference") == "http://inference.example:8765"
    assert reg.get_service_url("ledger") == "http://trainer.example:8888/realm/api/ledger"
    assert [h for h, _ in reg.with_role("inference")] == ["oracle"]
    assert not is_trainer_local(tmp_path)
    monkeypatch.setenv("TRAINER_TOKEN", "s3cret")
    client = get_ledger_client(tmp_path)
    assert isinstance(client, RemoteLedgerClient)
    assert client.url.endswith("/realm/api/ledger")
    assert client.session.headers["Authorization"] == "token s3cret"
    assert reg.get_service_url("vault", "trainer") == "http://trainer.example:8888/realm/api"
    with pytest.raises(KeyError, match="no host offers service 'tavern'"):
        reg.get_service_url("tavern")
    with pytest.raises(KeyError, match="no host 'nas'"):
        reg.get_host("nas")


def test_a_trainer_named_by_this_hosts_name_is_local(tmp_path):
    import json
    import socket
    (tmp_path / "hosts.json").write_text(
        json.dumps({"hosts": {"me": {"host": socket.gethostname(), "roles": ["trainer"]}}}))
    assert is_trainer_local(tmp_path)


@pytest.mark.parametrize("text, fragment", [
    ("hosts = 3", "expected a [hosts.<id>] table"),
    ("[hosts.a]\nservices = { x = { port = 0 } }", "port"),
    ("[hosts.a]\nbogus = 1", "bogus"),
    ("[hosts", "not readable"),
])
def test_bad_hosts_file_says_what_is_wrong(tmp_path, text, fragment):
    (tmp_path / "hosts.toml").write_text(text)
    with pytest.raises(ConfigError, match="hosts.toml") as e:
        HostRegistry.load(tmp_path)
    assert fragment in str(e.value)


def test_remote_client_unreachable_is_a_clear_error():
    client = RemoteLedgerClient("http://127.0.0.1:9/realm/api/ledger", timeout=2)
    assert not client.is_available()


def test_a_service_two_hosts_offer_is_the_trainers(tmp_path):
    """Listed first or not, the trainer's copy of a service answers (then the others')."""
    (tmp_path / "hosts.toml").write_text("""
[hosts.box]
host = "box.example"
roles = ["inference"]
services = { ledger = { port = 1 } }

[hosts.trainer]
host = "trainer.example"
role = "trainer"
services = { ledger = { port = 2 } }
""")
    assert HostRegistry.load(tmp_path).get_service_url("ledger") == "http://trainer.example:2"
