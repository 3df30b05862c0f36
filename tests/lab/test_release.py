"""The registration app's host (roles/regapp) and its releases (roomctl app, pyinfra).

What the office sees is probed from client1 (python3 inside its container, so every packet leaves
from the office network and crosses fw1); what mgmt1 and the servers zone see, from those hosts
over SSH. A release that does not answer must roll back on its own while the app keeps
answering: a poller on client1 asks https://app1/healthz ten times a second throughout.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from roomctl import converge as converge_mod
from roomctl import lab as lab_mod
from roomctl import release as release_mod
from roomctl import room as room_mod

log = logging.getLogger(__name__)
STATE = lab_mod.STATE_DIR
APP = "app1"
# Longest time the app may fail to answer while a release switches and restarts it, in seconds.
RESTART_WINDOW = 5.0
# The same when the new release crashes after the switch and is rolled back: its start, the crash
# seen, and the previous release's start (a crash can hold the unit's stop for its stop timeout,
# 10 s, in the lab's containers).
CRASH_WINDOW = 15.0

# Runs inside client1: one request, printed as JSON (status, headers, body, TLS version).
REQUEST = r"""
import json, os, socket, ssl, sys, urllib.error, urllib.parse, urllib.request
url = sys.argv[1]
context = ssl.create_default_context(cadata=os.environ["ROOM_CA"])
class Keep(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None
opener = urllib.request.build_opener(Keep, urllib.request.HTTPSHandler(context=context))
found = {}
try:
    with opener.open(url, timeout=5) as response:
        found = {"status": response.status, "headers": dict(response.headers),
                 "body": response.read(4000).decode(errors="replace")}
except urllib.error.HTTPError as error:
    found = {"status": error.code, "headers": dict(error.headers),
             "body": error.read(4000).decode(errors="replace")}
except Exception as error:
    found = {"status": None, "error": f"{type(error).__name__}: {error}"}
if found["status"] and url.startswith("https://"):
    name = urllib.parse.urlsplit(url).hostname
    with context.wrap_socket(socket.create_connection((name, 443), 5), server_hostname=name) as s:
        found["tls"] = s.version()
print(json.dumps(found))
"""

# Runs inside a host: whether a TCP connection to address:port is accepted ("open"), refused, or
# gets no answer (dropped by a firewall).
CONNECT = r"""
import socket, sys
connection = socket.socket()
connection.settimeout(3)
try:
    connection.connect((sys.argv[1], int(sys.argv[2])))
    print("open")
except ConnectionRefusedError:
    print("refused")
except OSError as error:
    print(type(error).__name__)
"""

# Runs inside client1 until its stdin closes: GET the URL every 0.1 s; then prints how many
# answers failed and the longest time without a good answer.
POLLER = r"""
import json, os, ssl, sys, threading, time, urllib.error, urllib.request
url = sys.argv[1]
context = ssl.create_default_context(cadata=os.environ["ROOM_CA"])
done = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
started = time.monotonic()
last_good = started
longest = 0.0
answers, failures, releases = 0, [], []
print("polling", flush=True)
while not done.is_set():
    moment = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as response:
            status = response.status
            release = json.loads(response.read()).get("release")
    except urllib.error.HTTPError as error:
        status, release = error.code, None
    except Exception as error:
        status, release = type(error).__name__, None
    answers += 1
    now = time.monotonic()
    if status == 200:
        longest = max(longest, now - last_good)
        last_good = now
        if not releases or releases[-1] != release:
            releases.append(release)
    else:
        failures.append([round(moment - started, 2), status])
    time.sleep(0.1)
longest = max(longest, time.monotonic() - last_good)
print(json.dumps({"answers": answers, "failed": len(failures), "failures": failures[:20],
                  "longest_gap": round(longest, 2), "releases": releases}), flush=True)
"""


def _in_client1(ca: str, *options: str) -> list[str]:
    """podman exec into client1, with the room CA in the environment."""
    return ["podman", "exec", *options, "-e", f"ROOM_CA={ca}", lab_mod.container("client1")]


def _client(room: room_mod.Room, code: str, *args: str, timeout: float = 30) -> str:
    """Run python3 code inside client1 (the office zone); its standard output."""
    ca = room.hostvars[APP]["vault_room_ca_cert"]
    result = subprocess.run(
        [*_in_client1(ca), "python3", "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _office_get(room: room_mod.Room, url: str) -> dict[str, Any]:
    return dict(json.loads(_client(room, REQUEST, url)))


@pytest.fixture(scope="module")
def address(room: room_mod.Room) -> str:
    return room.host(APP).address


@pytest.fixture(scope="module")
def releaser(room: room_mod.Room) -> Iterator[release_mod.Releaser]:
    reach = release_mod.Releaser(room, STATE / "ssh_config")
    yield reach
    reach.close()


@contextlib.contextmanager
def healthz_poller(room: room_mod.Room, address: str) -> Iterator[dict[str, Any]]:
    """Poll https://app1/healthz from client1 for as long as the block runs; the summary is in
    the yielded dict afterwards."""
    ca = room.hostvars[APP]["vault_room_ca_cert"]
    process = subprocess.Popen(
        [*_in_client1(ca, "-i"), "python3", "-c", POLLER, f"https://{address}/healthz"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdin is not None
    assert process.stdout.readline().strip() == "polling"
    summary: dict[str, Any] = {}
    try:
        yield summary
    finally:
        out, _ = process.communicate(input="", timeout=30)
        summary.update(json.loads(out.strip().splitlines()[-1]))


def _broken_source(tmp_path: Path) -> Path:
    """A copy of the app whose WSGI module raises at import: it installs, but never serves."""
    source = tmp_path / "app"
    shutil.copytree(
        release_mod.APP_SOURCE,
        source,
        ignore=shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__"),
    )
    wsgi = source / "src" / "regapp" / "wsgi.py"
    broken = 'raise RuntimeError("broken on purpose by tests/lab/test_release.py")'
    wsgi.write_text(f"{wsgi.read_text()}\n{broken}\n")
    return source


def _roomctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "roomctl.cli", *args],
        capture_output=True,
        text=True,
        cwd=room_mod.REPO,
        timeout=600,
        check=False,
    )


# the host -------------------------------------------------------------------------------------


def test_a_converge_of_a_released_app_host_changes_nothing(released: str) -> None:
    again = converge_mod.converge(
        "app_servers", inventory=room_mod.LAB_INVENTORY, limit=APP, summary=False
    )
    assert again.ok, again.stats
    assert again.changed().get(APP) == 0, again.stats


def test_the_site_and_app_playbooks_include_the_app_role() -> None:
    for playbook in ("site", "app_servers"):
        text = (converge_mod.PLAYBOOKS / f"{playbook}.yml").read_text()
        assert "role: regapp" in text, playbook


@pytest.mark.parametrize(
    ("path", "mode", "group"),
    [
        ("/etc/regapp/secrets/register_app", 0o640, "regapp"),
        ("/etc/regapp/secrets/register_read", 0o640, "regapp"),
        ("/etc/regapp/secrets/register_migrate", 0o600, "root"),
        ("/etc/regapp/secrets/secret_key", 0o640, "regapp"),
        ("/etc/regapp/regapp.toml", 0o640, "regapp"),
        ("/etc/regapp/secrets", 0o750, "regapp"),
    ],
)
def test_the_app_secrets_have_their_modes(
    host: Callable[[str], Any], path: str, mode: int, group: str
) -> None:
    found = host(APP).file(path)
    assert found.exists
    assert (found.mode, found.user, found.group) == (mode, "root", group)


def test_the_register_passwords_on_app1_are_the_vault_ones(
    host: Callable[[str], Any], room: room_mod.Room
) -> None:
    passwords = room.hostvars[APP]["vault_postgresql_passwords"]
    for role in ("register_app", "register_read", "register_migrate"):
        content = host(APP).file(f"/etc/regapp/secrets/{role}").content_string
        assert content.strip() == passwords[role], role


def test_the_app_runs_as_its_own_account_without_privileges(
    host: Callable[[str], Any], released: str
) -> None:
    app1 = host(APP)
    users = app1.check_output("ps -o user= -C gunicorn | sort -u")
    assert users.split() == ["regapp"]
    shown = app1.check_output(
        "systemctl show -p NoNewPrivileges -p ProtectSystem -p CapabilityBoundingSet regapp"
    )
    assert "NoNewPrivileges=yes" in shown
    assert "ProtectSystem=strict" in shown
    assert "CapabilityBoundingSet=\n" in shown + "\n"


# what the office sees -------------------------------------------------------------------------


def test_plain_http_only_redirects_to_https(room: room_mod.Room, address: str) -> None:
    found = _office_get(room, f"http://{address}/some/page?x=1")
    assert found["status"] == 301, found
    assert found["headers"]["Location"] == f"https://{address}/some/page?x=1"


def test_https_answers_the_office_with_a_certificate_of_the_room_ca(
    room: room_mod.Room, address: str, released: str
) -> None:
    found = _office_get(room, f"https://{address}/healthz")
    assert found["status"] == 200, found
    assert json.loads(found["body"]) == {"status": "ok", "release": released, "database": "ok"}
    assert found["tls"] in ("TLSv1.2", "TLSv1.3")
    headers = {key.lower(): value for key, value in found["headers"].items()}
    assert headers["strict-transport-security"].startswith("max-age=")
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "nginx/" not in headers.get("server", "")


def test_a_client_that_does_not_trust_the_room_ca_is_refused_the_connection(
    room: room_mod.Room, address: str
) -> None:
    code = REQUEST.replace('cadata=os.environ["ROOM_CA"]', "")
    found = json.loads(_client(room, code, f"https://{address}/healthz"))
    assert found["status"] is None
    assert "CERTIFICATE_VERIFY_FAILED" in found["error"]


def test_metrics_are_not_served_over_https(room: room_mod.Room, address: str) -> None:
    for path in ("/metrics", "/metrics/", "//metrics", "/%6detrics"):
        found = _office_get(room, f"https://{address}{path}")
        assert found["status"] == 404, (path, found)
        assert "# TYPE" not in found["body"]


@pytest.mark.parametrize("port", [8000, 9200])
def test_the_app_and_metrics_ports_are_closed_to_the_office(
    room: room_mod.Room, address: str, port: int
) -> None:
    assert _client(room, CONNECT, address, str(port)) not in ("open", "refused")


def test_metrics_answer_mgmt1_on_their_own_port(
    host: Callable[[str], Any], address: str, released: str
) -> None:
    code = (
        "import urllib.request, sys; r = urllib.request.urlopen(sys.argv[1], timeout=5);"
        " print(r.status); print(r.read().decode())"
    )
    out = host("mgmt1").check_output(
        f"python3 -c {shlex.quote(code)} http://{address}:9200/metrics"
    )
    status, _, body = out.partition("\n")
    assert status == "200"
    assert "# TYPE" in body


@pytest.mark.parametrize("source", ["db1", "bk1"])
def test_metrics_are_closed_to_other_room_hosts(
    host: Callable[[str], Any], address: str, source: str
) -> None:
    out = host(source).check_output(f"python3 -c {shlex.quote(CONNECT)} {address} 9200")
    assert out not in ("open", "refused")


# releases -------------------------------------------------------------------------------------


@pytest.mark.destructive
def test_a_release_that_never_answers_is_rolled_back_before_the_switch(
    room: room_mod.Room,
    address: str,
    released: str,
    releaser: release_mod.Releaser,
    tmp_path: Path,
) -> None:
    before = releaser.inspect(APP)
    with healthz_poller(room, address) as polled:
        result = _roomctl("app", "release", "--source", str(_broken_source(tmp_path)))
    assert result.returncode != 0, result.stdout
    assert "failed and was rolled back" in result.stderr, result.stderr
    assert "broken on purpose" in result.stderr
    after = releaser.inspect(APP)
    assert after.current == before.current
    assert after.releases == before.releases
    log.info("broken release, checked beside the running one: %s", polled)
    assert polled["failed"] == 0, polled
    assert polled["releases"] == [before.current]


@pytest.mark.destructive
def test_a_switched_release_that_does_not_answer_rolls_back_on_its_own(
    room: room_mod.Room,
    address: str,
    released: str,
    releaser: release_mod.Releaser,
    tmp_path: Path,
) -> None:
    """Without the trial run beside the running release, the health check through nginx after
    the switch is what catches it."""
    before = releaser.inspect(APP)
    broken = _broken_source(tmp_path)
    with healthz_poller(room, address) as polled, pytest.raises(release_mod.ReleaseError) as raised:
        releaser.release(broken, candidate=False)
    message = str(raised.value)
    assert "failed and was rolled back" in message
    assert f"{before.current} answers again" in message
    assert "journal" in message
    after = releaser.inspect(APP)
    assert after.current == before.current
    assert after.previous == before.previous
    assert after.releases == before.releases
    log.info("broken release, caught after the switch: %s", polled)
    assert polled["longest_gap"] < CRASH_WINDOW, polled
    assert polled["releases"][-1] == before.current


@pytest.mark.destructive
def test_a_new_release_switches_with_a_short_gap_and_rolls_back_on_demand(
    room: room_mod.Room, address: str, released: str, releaser: release_mod.Releaser
) -> None:
    before = releaser.inspect(APP)
    with healthz_poller(room, address) as polled:
        new = releaser.release()
    log.info("good release: %s", polled)
    assert polled["longest_gap"] < RESTART_WINDOW, polled
    assert polled["releases"][-1] == new
    state = releaser.inspect(APP)
    assert (state.current, state.previous) == (new, before.current)
    assert len(state.releases) <= release_mod.KEEP

    result = _roomctl("app", "rollback")
    assert result.returncode == 0, result.stderr
    state = releaser.inspect(APP)
    assert (state.current, state.previous) == (before.current, new)
    assert _office_get(room, f"https://{address}/healthz")["status"] == 200

    status = _roomctl("app", "status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert before.current in status.stdout and new in status.stdout
