"""Every way of starting a server decides address, origins and login from its final,
effective options: no spelling of "listen beyond loopback" gets past the check without a
login (issue 27, item 1).

The refusals run the real commands (`realm tavern`, `python -m realm_widgets.app`,
`realm oracle serve`) as subprocesses and check that they exit 2 naming why, and that
nothing listens on the port they were given."""

from __future__ import annotations

import subprocess
import sys

import pytest

from realm_kernel.services.exposure import exposure, is_loopback
from realm_kernel.services.tavern_server import ExposureError, TavernServer, parse

from ..helpers import child_env, free_port, listening_addresses, wait_for

CLI = [sys.executable, "-m", "realm_kernel.cli"]
APP = [sys.executable, "-m", "realm_widgets.app"]


def run(argv: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    # A command that wrongly started its server would still be running at the timeout,
    # which fails the test (TimeoutExpired) instead of hanging it. 300 s: JupyterLab took
    # over 120 s to refuse at nice 19 on the shared 2-core machine (load 25, a mutation run).
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("address, loopback", [
    ("127.0.0.1", True), ("127.0.0.2", True), ("localhost", True), ("LOCALHOST", True),
    ("::1", True), ("[::1]", True),
    ("0.0.0.0", False), ("", False), ("::", False), ("*", False), ("10.0.0.7", False),
    ("127.0.0.1.nip.io", False), ("0", False), ("tavern.example.org", False),
])
def test_loopback_is_an_address_not_a_prefix(address, loopback):
    assert is_loopback(address) is loopback


@pytest.mark.parametrize("origin, exposed", [
    ("localhost:5006", False), ("127.0.0.1:5006", False), ("[::1]:5006", False),
    ("http://localhost:5006", False),
    ("evil.example:5006", True), ("http://evil.example", True), ("*", True),
    ("localhost.evil.example:5006", True), ("10.0.0.7:5006", True),
])
def test_an_origin_of_another_host_is_exposure(origin, exposed):
    assert bool(exposure("127.0.0.1", [origin])) is exposed
    assert (TavernServer(allow_websocket_origin=[origin]).exposed() != []) is exposed


def test_the_app_parser_takes_no_prefix_and_the_last_value_is_the_one_checked(monkeypatch):
    monkeypatch.delenv("REALM_TAVERN_PASSWORD", raising=False)
    for argv in (["--addr", "0.0.0.0"], ["--allow-web", "evil.example"], ["--bogus"]):
        with pytest.raises(SystemExit) as e:
            parse(argv)
        assert e.value.code == 2, argv
    last = parse(["--address", "127.0.0.1", "--address=0.0.0.0"])
    assert last.address == "0.0.0.0"
    with pytest.raises(ExposureError, match="without a login"):
        last.check()
    # The server the app serves is the server that was checked, secrets included.
    checked = TavernServer(address="0.0.0.0", basic_auth="pw").check()
    argv, env = checked.launch()
    assert argv == [sys.executable, "-m", "realm_widgets.app"]
    assert TavernServer.from_env(dict(env)) == checked
    assert "pw" not in " ".join(argv) and checked.cookie_secret not in " ".join(argv)


@pytest.mark.parametrize("args", [
    ["--addr", "0.0.0.0"],                           # a prefix the app's argparse once took
    ["--", "--address", "0.0.0.0"],                  # passed through after the checks
    ["--allow-web", "evil.example:5006"],            # a prefix of --allow-websocket-origin
    ["--address=0.0.0.0"],
    ["--address", "0.0.0.0"],
    ["--address", "127.0.0.1", "--address", "0.0.0.0"],  # the last one wins, and is checked
    ["--address", "::"],
    ["--address", ""],
    ["--allow-websocket-origin", "evil.example:5006"],
    ["--allow-websocket-origin=*"],
])
def test_realm_tavern_never_listens_beyond_loopback_without_a_login(tmp_path, args):
    port = free_port()
    env = child_env(tmp_path / "home")
    env.pop("REALM_TAVERN_PASSWORD", None)
    out = run([*CLI, "tavern", "--port", str(port), *args], env)
    assert out.returncode == 2, (args, out.stdout, out.stderr)
    assert "without a login" in out.stderr or "No such option" in out.stderr \
        or "unexpected extra argument" in out.stderr, out.stderr
    assert listening_addresses(port) == set()


@pytest.mark.parametrize("args", [["--addr", "0.0.0.0"], ["--address", "0.0.0.0"],
                                  ["--allow-websocket-origin", "evil.example:5006"]])
def test_the_app_started_by_hand_is_checked_the_same_way(tmp_path, args):
    port = free_port()
    env = child_env(tmp_path / "home")
    out = run([*APP, "--port", str(port), *args], env)
    assert out.returncode == 2, (args, out.stderr)
    assert "without a login" in out.stderr or "unrecognized arguments" in out.stderr, out.stderr
    assert listening_addresses(port) == set()


@pytest.mark.parametrize("args", [
    [],                                                   # Panel's default: every address
    ["--address", "0.0.0.0"],
    ["--addr", "0.0.0.0"],                                # Panel's own parser takes prefixes
    ["--address", "127.0.0.1", "--allow-websocket-origin", "evil.example:5006"],
])
def test_panel_serve_of_a_page_script_refuses_what_panel_made_of_its_options(tmp_path, args):
    """`panel serve widgets/tavern.py` is Panel's command line: the script reads the running
    server's sockets and origins at the first request, builds no page and stops it."""
    import requests
    port = free_port()
    env = child_env(tmp_path / "home")
    proc = subprocess.Popen([sys.executable, "-m", "panel", "serve", "widgets/tavern.py",
                             "--port", str(port), *args], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: listening_addresses(port) or proc.poll() is not None, 60, "panel serve to listen")
        with pytest.raises(requests.ConnectionError):  # the request that ran the script
            requests.get(f"http://127.0.0.1:{port}/tavern", timeout=60)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 2, (args, err)
    assert "refusing to expose the Tavern (panel serve)" in err and "without a login" in err, err
    assert not (tmp_path / "home" / "ledger").exists()  # no page was built, no realm opened


def test_panel_serve_of_a_page_script_with_panel_s_login_serves(tmp_path):
    import requests
    port = free_port()
    env = {**child_env(tmp_path / "home"), "PANEL_BASIC_AUTH": "a-test-password-1",
           "PANEL_COOKIE_SECRET": "a-test-cookie-secret"}  # Panel's own variables
    proc = subprocess.Popen([sys.executable, "-m", "panel", "serve", "widgets/tavern.py", "--port",
                             str(port), "--address", "127.0.0.1", "--allow-websocket-origin",
                             "evil.example:5006"], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: listening_addresses(port), 60, "panel serve to listen")
        page = requests.get(f"http://127.0.0.1:{port}/tavern", timeout=60)
        assert page.ok and "login" in page.url, page.url  # Panel's login page, server still up
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def no_token_config(tmp_path) -> str:
    """A Jupyter config file that turns the token off: a spelling no argument check sees."""
    cfg = tmp_path / "no_token.py"
    cfg.write_text("c.IdentityProvider.token = ''\n")
    return str(cfg)


OURS = "refusing to expose the realm's Jupyter server"
JUPYTERS = "only accepts one value"  # traitlets: `realm` already set --ip=127.0.0.1


@pytest.mark.parametrize("extra, refusal", [
    (["--ServerApp.allow_origin=*"], OURS),
    (["--ServerApp.allow_origin=http://evil.example"], OURS),
    (["--ServerApp.allow_origin_pat=.*"], OURS),
    (["--ip=0.0.0.0"], JUPYTERS),
    (["--ServerApp.ip=0.0.0.0"], JUPYTERS),
    (["--ip", "127.0.0.1", "--ip=0.0.0.0"], JUPYTERS),
])
def test_realm_oracle_serve_checks_the_final_jupyter_options(tmp_path, extra, refusal):
    """The token switched off by a config file, the origin or address by an argument:
    the realm extension sees the server's final options and stops it before it binds."""
    port = free_port()
    env = {**child_env(tmp_path / "home"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt")}
    out = run([*CLI, "oracle", "serve", f"--port={port}", f"--config={no_token_config(tmp_path)}",
               *extra], env)
    assert out.returncode != 0 and refusal in out.stderr, (extra, out.stderr[-2000:])
    assert out.returncode == 2 or refusal == JUPYTERS
    assert listening_addresses(port) == set()


@pytest.mark.parametrize("extra, in_config", [
    (["--ip=0.0.0.0"], ""),
    (["--ip="], ""),
    ([], "c.ServerApp.ip = '0.0.0.0'\n"),
    ([], "c.ServerApp.ip = '0.0.0.0'\nc.IdentityProvider.token = ''\n"),
])
def test_a_plain_jupyter_server_with_the_realm_extension_is_checked_too(tmp_path, extra, in_config):
    """`jupyter server` / `jupyter lab` in the realm's environment load the extension, which
    refuses a token-less server on every address, however the address was set."""
    from realm_kernel.cli.jupyter import jupyter_env
    port = free_port()
    cfg = tmp_path / "cfg.py"
    cfg.write_text("c.IdentityProvider.token = ''\n" + in_config)
    env = {**jupyter_env(), **child_env(tmp_path / "home"), "REALM_WEAVER": "0",
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt")}
    env.pop("JUPYTER_TOKEN", None)
    out = run([sys.executable, "-m", "jupyter_server", f"--port={port}", "--no-browser",
               "--allow-root", f"--config={cfg}", f"--ServerApp.root_dir={tmp_path}", *extra], env)
    assert out.returncode == 2 and OURS in out.stderr, (extra, out.stderr[-2000:])
    assert listening_addresses(port) == set()


@pytest.mark.parametrize("secret", [["--IdentityProvider.token=abc"], ["--ServerApp.token", "abc"],
                                    ["--ServerApp.password=x"]])
def test_jupyter_secrets_are_refused_as_arguments(tmp_path, secret):
    port = free_port()
    env = child_env(tmp_path / "home")
    out = run([*CLI, "oracle", "serve", f"--port={port}", *secret], env)
    assert out.returncode == 2 and "JUPYTER_TOKEN" in out.stderr, out.stderr
    assert listening_addresses(port) == set()


def test_the_jupyter_token_is_never_an_argument(tmp_path, procs):
    """`realm oracle serve` (the same code as `realm play`) hands Jupyter its token through
    JUPYTER_TOKEN: the server's /proc/PID/cmdline, which every local user can read, holds
    no token, and the token still guards the API."""
    import requests

    from ..helpers import wait_for
    port, token = free_port(), "tok-" + "5e" * 20
    env = {**child_env(tmp_path / "home"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"),
           "JUPYTER_TOKEN": token, "REALM_WEAVER": "0"}
    proc = procs.start("owner", [*CLI, "oracle", "serve", f"--port={port}"], env)
    url = f"http://127.0.0.1:{port}/realm/api/health"
    wait_for(lambda: requests.get(url, headers={"Authorization": f"token {token}"},
                                  timeout=5).ok, 120, "the server to answer with its token")
    assert requests.get(url, timeout=5).status_code == 403
    cmdline = open(f"/proc/{proc.pid}/cmdline", "rb").read()
    assert b"jupyter_server" in cmdline  # the server itself (exec'd)
    assert token.encode() not in cmdline and b".token" not in cmdline.lower(), cmdline
    # The file that hands the token to the realm's other processes is the owner's alone.
    from realm_kernel.store.paths import RealmPaths
    ad = RealmPaths.at(tmp_path / "home").oracle_owner
    wait_for(lambda: token in ad.read_text(), 60, "the Oracle owner's advertisement")
    assert ad.stat().st_mode & 0o077 == 0, oct(ad.stat().st_mode)
