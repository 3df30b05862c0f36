"""Releasing the registration app to the app hosts, with pyinfra.

A release is an ordered operation with decisions between its steps, not a state: build a
wheelhouse here, upload it, make a new virtual environment from it, migrate the register, try the
new release beside the running one, switch to it, check it through nginx, and roll back on its
own when it does not answer. pyinfra runs it from Python (its API, not its command line), over
the room's own Ansible inventory and the SSH config that reaches the hosts through mgmt1.

On each app host (paths shared with roles/regapp):

    /opt/regapp/releases/<id>/wheels   the wheelhouse the release was installed from
    /opt/regapp/releases/<id>/venv     its virtual environment
    /opt/regapp/releases/<id>/RELEASE  its id, which the app reports on /healthz
    /opt/regapp/current, previous      relative symlinks, each switched by an atomic rename
"""

from __future__ import annotations

import datetime
import getpass
import hashlib
import json
import logging
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roomctl import room as room_mod

Progress = Callable[[str], None]

APP_SOURCE = room_mod.REPO / "app"
GROUP = "app_servers"
HOME = "/opt/regapp"
RELEASES = f"{HOME}/releases"
CURRENT = f"{HOME}/current"
PREVIOUS = f"{HOME}/previous"
UNIT = "regapp.service"
CANDIDATE_UNIT = "regapp-candidate.service"
CANDIDATE_BIND = "127.0.0.1:8001"
# Held while a release or rollback changes a host (a tmpfs: a reboot clears a stale one).
LOCK = "/run/lock/roomctl-regapp-release"
# Seconds to wait for another release or rollback on the same host to end.
LOCK_WAIT = 180.0
CONFIG = "/etc/regapp/regapp.toml"
GUNICORN_CONFIG = "/etc/regapp/gunicorn.conf.py"
CA_FILE = "/etc/roomctl/tls/ca.crt"
# Releases kept on a host (the current and the previous one are never removed).
KEEP = 3
# Seconds a new release has to answer its health check.
HEALTH_SECONDS = 20.0
# Journal lines of the app shown when a release fails.
JOURNAL_LINES = 20
# The app hosts run Debian 12: CPython 3.11 on x86_64 with glibc 2.36, and no package index.
PYTHON_VERSION = "3.11"
ABI = "cp311"
PLATFORMS = [f"manylinux_2_{minor}_x86_64" for minor in range(36, 4, -1)] + [
    "manylinux2014_x86_64",
    "manylinux2010_x86_64",
    "manylinux1_x86_64",
]
RELEASE_ID = re.compile(r"\A[0-9A-Za-z.+_]+-\d{8}T\d{6}Z\Z")

# Run on an app host: GET /healthz until it answers 200 with the expected release, or the time
# runs out, or (given a unit) the unit has crashed since it was last started. Prints one JSON line.
HEALTH_PROBE = r"""
import json, ssl, subprocess, sys, time, urllib.error, urllib.request
url, expected, seconds, unit, cafile = sys.argv[1:6]
context = ssl.create_default_context(cafile=cafile) if url.startswith("https") else None
started = time.monotonic()
result = {"ok": False, "url": url, "answer": "no answer"}
while True:
    try:
        with urllib.request.urlopen(url, timeout=5, context=context) as response:
            status, body = response.status, response.read(2000).decode(errors="replace")
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read(2000).decode(errors="replace")
    except Exception as error:
        status, body = None, f"{type(error).__name__}: {error}"
    text = " ".join(body.split())
    result["answer"] = f"HTTP {status}: {text[:200]}" if status else text[:200]
    release = None
    if status == 200:
        try:
            release = json.loads(body).get("release")
        except ValueError:
            pass
    result["release"] = release
    if status == 200 and (not expected or release == expected):
        result["ok"] = True
        break
    if time.monotonic() - started >= float(seconds):
        break
    if unit:
        shown = subprocess.run(
            ["systemctl", "show", "-p", "ActiveState", "-p", "SubState", "-p", "NRestarts", unit],
            capture_output=True, text=True).stdout
        state = dict(line.split("=", 1) for line in shown.splitlines() if "=" in line)
        # Started just before: stopping, stopped, failed or restarted since means it crashed.
        if (state.get("ActiveState") in ("deactivating", "failed", "inactive")
                or state.get("SubState") == "auto-restart" or state.get("NRestarts", "0") != "0"):
            result["answer"] += f" ({unit} crashed: {state.get('ActiveState')})"
            break
    time.sleep(0.5)
result["seconds"] = round(time.monotonic() - started, 2)
print(json.dumps(result))
"""

# Run on an app host: its releases and the two links, as JSON.
INSPECT = r"""
import json, os, sys
releases = sys.argv[1]
def link(path):
    try:
        return os.path.basename(os.readlink(path))
    except OSError:
        return None
names = sorted(os.listdir(releases)) if os.path.isdir(releases) else []
print(json.dumps({
    "releases": [n for n in names if os.path.isfile(os.path.join(releases, n, "RELEASE"))],
    "incomplete": [n for n in names if not os.path.isfile(os.path.join(releases, n, "RELEASE"))],
    "current": link(sys.argv[2]),
    "previous": link(sys.argv[3]),
}))
"""


class ReleaseError(RuntimeError):
    """A release, rollback or status failed; the message says where each host stands."""


@dataclass
class Wheelhouse:
    """The wheels of one release, built on the control node."""

    release_id: str
    version: str
    path: Path
    wheels: list[str]


@dataclass
class HostState:
    """An app host's releases, links, service and health."""

    name: str
    releases: list[str] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)
    current: str | None = None
    previous: str | None = None
    service: str = "unknown"
    health: str = ""
    healthy: bool = False


def _quiet(_: str) -> None:
    return None


def _timestamp(release_id: str) -> str:
    return release_id.rsplit("-", 1)[-1]


def release_order(names: list[str]) -> list[str]:
    """Release ids oldest first (by their UTC time, whatever their version)."""
    return sorted(names, key=lambda name: (_timestamp(name), name))


def to_prune(releases: list[str], current: str | None, previous: str | None) -> list[str]:
    """Releases beyond the newest KEEP, never the current or the previous one."""
    keep = set(release_order(releases)[-KEEP:]) | {current, previous}
    return [name for name in release_order(releases) if name not in keep]


# the wheelhouse, on the control node ---------------------------------------------------------


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ReleaseError(
            f"{shlex.join(argv[2:])} failed (exit {result.returncode}):\n"
            f"{(result.stderr or result.stdout).strip()[-3000:]}"
        )
    return result


def build_wheelhouse(source: Path, into: Path, progress: Progress = _quiet) -> Wheelhouse:
    """pip wheel of the app at source, plus binary wheels of its pinned dependencies for the app
    hosts (cp311, manylinux x86_64), into a new directory under into."""
    if not (source / "pyproject.toml").is_file() or not (source / "constraints.txt").is_file():
        raise ReleaseError(
            f"{source} holds no pyproject.toml and constraints.txt: not the app's source tree"
        )
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    work = Path(tempfile.mkdtemp(prefix="roomctl-build-", dir=into))
    # A copy, so that the build leaves nothing (build/, *.egg-info) in the source tree.
    tree = work / "source"
    shutil.copytree(
        source, tree, ignore=shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__")
    )
    wheels = work / "wheels"
    progress(f"building the app's wheel from {source} (pip wheel)")
    _pip("wheel", "--quiet", "--no-deps", "--wheel-dir", str(wheels), str(tree))
    shutil.rmtree(tree)
    built = sorted(wheels.glob("regapp-*.whl"))
    if len(built) != 1:
        raise ReleaseError(f"pip wheel of {source} made {len(built)} regapp wheels, not one")
    version = built[0].name.split("-")[1]
    platform_args = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    progress(
        f"fetching its pinned dependencies as binary wheels for CPython {PYTHON_VERSION}"
        " manylinux x86_64 (pip download)"
    )
    _pip(
        "download",
        "--quiet",
        "--dest",
        str(wheels),
        "--only-binary=:all:",
        *platform_args,
        "--python-version",
        PYTHON_VERSION,
        "--implementation",
        "cp",
        "--abi",
        ABI,
        # Transitive dependencies too, at the versions tested (app/constraints.txt).
        "--constraint",
        str(source / "constraints.txt"),
        str(built[0]),
    )
    names = sorted(path.name for path in wheels.glob("*.whl"))
    # Checked on each host after the upload.
    (wheels / "SHA256SUMS").write_text(
        "".join(f"{hashlib.sha256((wheels / n).read_bytes()).hexdigest()}  {n}\n" for n in names)
    )
    return Wheelhouse(release_id=f"{version}-{stamp}", version=version, path=wheels, wheels=names)


# the app hosts, through pyinfra --------------------------------------------------------------


def pyinfra_inventory(room: room_mod.Room, ssh_config: Path) -> Any:
    """pyinfra's inventory of the room's provisioned hosts, from the Ansible inventory.

    Hosts, addresses, login and groups are the ones Ansible reads; SSH goes through ssh_config
    (jumping through mgmt1), whose host-key checking applies.
    """
    import paramiko
    from pyinfra.api.inventory import Inventory

    config = paramiko.SSHConfig.from_path(str(ssh_config))
    names = [host.name for host in room.hosts("room")]
    hosts = []
    for host in room.hosts("room"):
        data: dict[str, Any] = {
            "ssh_hostname": host.address,
            "ssh_config_file": str(ssh_config),
            # What the SSH config says, as for ssh itself; else only hosts already known.
            "ssh_strict_host_key_checking": config.lookup(host.address).get(
                "stricthostkeychecking", "yes"
            ),
            "ssh_connect_retries": 1,
        }
        user = room.hostvars[host.name].get("ansible_user")
        if isinstance(user, str) and user and "{" not in user:
            data["ssh_user"] = user
        hosts.append((host.name, data))
    groups: dict[str, tuple[list[str], dict[str, Any]]] = {
        name: ([member for member in members if member in names], {})
        for name, members in room.groups.items()
        if name not in ("all", "ungrouped") and any(member in names for member in members)
    }
    return Inventory((hosts, {}), **groups)  # type: ignore[no-untyped-call]


@dataclass
class Output:
    """What a command on a host did."""

    ok: bool
    stdout: str
    stderr: str


class Releaser:
    """The app hosts of a room, reached with pyinfra as the administrator, with sudo."""

    def __init__(self, room: room_mod.Room, ssh_config: Path, progress: Progress = _quiet):
        from pyinfra.api.config import Config
        from pyinfra.api.state import State

        # pyinfra reports every operation on its own logger; the steps are reported here.
        logging.getLogger("pyinfra").setLevel(logging.CRITICAL)
        self.room = room
        self.progress = progress
        self.hosts = [host.name for host in room.hosts(GROUP)]
        if not self.hosts:
            raise ReleaseError(f"{room.inventory} has no host in group {GROUP}")
        inventory = pyinfra_inventory(room, ssh_config)
        self.state = State(
            inventory,
            Config(SUDO=True, CONNECT_TIMEOUT=15),  # type: ignore[no-untyped-call]
            initial_limit=[inventory.get_host(name) for name in self.hosts],
        )
        self._connected = False

    # transport --------------------------------------------------------------------------

    def connect(self) -> None:
        """Open an SSH connection to every app host; fail naming those not reached."""
        if self._connected:
            return
        from pyinfra.api.connect import connect_all
        from pyinfra.api.exceptions import PyinfraError
        from pyinfra.api.operations import run_ops

        try:
            connect_all(self.state)
        except PyinfraError as error:
            raise ReleaseError(f"no app host answered over SSH ({error})") from error
        missed = [host.name for host in self.state.failed_hosts]
        if missed:
            raise ReleaseError(f"not reached over SSH: {', '.join(missed)}")
        # Enter pyinfra's execution stage (with no operation queued): from here on each
        # operation runs as soon as it is added, so that the next step can depend on its result.
        run_ops(self.state)
        self._connected = True

    def close(self) -> None:
        """Close the SSH connections."""
        if self._connected:
            from pyinfra.api.connect import disconnect_all

            disconnect_all(self.state)
            self._connected = False

    def _host(self, name: str) -> Any:
        self.connect()
        return self.state.inventory.get_host(name)

    def _op(self, name: str, description: str, operation: Any, **kwargs: Any) -> Output:
        """Run one pyinfra operation on a host as root, now; what it did."""
        from pyinfra.api.operation import add_op

        host = self._host(name)
        meta = add_op(
            self.state, operation, host=host, name=description, _ignore_errors=True, **kwargs
        )[host]
        ok = bool(meta.did_succeed(_raise_if_not_complete=False))
        stdout = "\n".join(meta.stdout_lines) if meta.is_complete() else ""
        stderr = "\n".join(meta.stderr_lines) if meta.is_complete() else ""
        return Output(ok=ok, stdout=stdout, stderr=stderr)

    def shell(self, name: str, description: str, script: str) -> Output:
        """A shell script run as root on a host."""
        from pyinfra.operations import server

        return self._op(name, description, server.shell, commands=[script])

    def _python(self, name: str, description: str, code: str, *args: str) -> Any:
        out = self.shell(
            name, description, shlex.join(["python3", "-c", code, *(str(a) for a in args)])
        )
        if not out.ok:
            raise ReleaseError(f"{name}: {description} failed: {out.stderr or out.stdout}")
        return json.loads(out.stdout.strip().splitlines()[-1])

    # what a host holds --------------------------------------------------------------------

    def inspect(self, name: str) -> HostState:
        """The releases and links of an app host."""
        found = self._python(name, "read the releases", INSPECT, RELEASES, CURRENT, PREVIOUS)
        return HostState(
            name=name,
            releases=release_order(found["releases"]),
            incomplete=found["incomplete"],
            current=found["current"],
            previous=found["previous"],
        )

    def probe(self, name: str, expected: str = "", seconds: float = 0.0, unit: str = "") -> Any:
        """The app's /healthz through nginx on the host itself (https://NAME/healthz)."""
        return self._python(
            name,
            "check the app's health",
            HEALTH_PROBE,
            f"https://{name}/healthz",
            expected,
            str(seconds),
            unit,
            CA_FILE,
        )

    def journal(self, name: str, unit: str = UNIT) -> str:
        """The last lines of a unit's journal."""
        out = self.shell(
            name,
            "read the app's journal",
            f"journalctl -u {unit} -n {JOURNAL_LINES} --no-pager -o short-iso",
        )
        return out.stdout.strip()

    def status(self) -> list[HostState]:
        """Each app host: releases, the current and previous one, service state and health."""
        states = []
        for name in self.hosts:
            state = self.inspect(name)
            state.service = self.shell(
                name, "read the app's state", f"systemctl is-active {UNIT} || true"
            ).stdout.strip()
            answer = self.probe(name)
            state.healthy = bool(answer["ok"])
            state.health = answer["answer"]
            states.append(state)
        return states

    # steps --------------------------------------------------------------------------------

    def _switch(self, name: str, current: str, previous: str | None) -> None:
        """Point current (and previous) at releases, each by an atomic rename, then restart."""
        links = [("current", current)] + ([("previous", previous)] if previous else [])
        script = ["set -eu", f"cd {HOME}"]
        for link, target in links:
            script.append(f"ln -sfn releases/{shlex.quote(target)} {link}.new")
            script.append(f"mv -T {link}.new {link}")
        if not previous:
            script.append("rm -f previous")
        out = self.shell(name, f"switch to release {current}", "\n".join(script))
        if not out.ok:
            raise ReleaseError(f"{name}: switching to {current} failed: {out.stderr}")

    def _restart(self, name: str) -> Output:
        return self.shell(name, "restart the app", f"systemctl restart {UNIT}")

    def _why(self, name: str, check: Any, unit: str = UNIT) -> str:
        return (
            f"the failing check: {check['url']} answered {check['answer']}"
            f" after {check.get('seconds', 0)} s;\nlast lines of {unit}'s journal on {name}:\n"
            + (self.journal(name, unit) or "(none)")
        )

    def _candidate(self, name: str, release_id: str) -> Any:
        """Run the new release beside the running one (its own port, one worker, the same
        settings and account) and check its health there; stop it again."""
        directory = f"{RELEASES}/{release_id}"
        argv = [
            "systemd-run",
            f"--unit={CANDIDATE_UNIT}",
            "--collect",
            "--quiet",
            "--property=Type=notify",
            "--property=NotifyAccess=main",
            "--property=User=regapp",
            "--property=Group=regapp",
            "--property=RuntimeDirectory=regapp-candidate",
            "--property=NoNewPrivileges=yes",
            "--property=ProtectSystem=strict",
            "--property=ProtectHome=yes",
            "--property=PrivateTmp=yes",
            f"--setenv=REGAPP_CONFIG={CONFIG}",
            "--setenv=PROMETHEUS_MULTIPROC_DIR=/run/regapp-candidate",
            f"{directory}/venv/bin/gunicorn",
            "--config",
            GUNICORN_CONFIG,
            "--bind",
            CANDIDATE_BIND,
            "--workers",
            "1",
            "regapp.wsgi:app",
        ]
        self.shell(
            name,
            "clear a candidate left by an interrupted release",
            f"systemctl stop {CANDIDATE_UNIT} 2>/dev/null; "
            f"systemctl reset-failed {CANDIDATE_UNIT} 2>/dev/null; true",
        )
        started = self.shell(name, "start the new release beside the running one", shlex.join(argv))
        check = self._python(
            name,
            "check the new release's health on its own port",
            HEALTH_PROBE,
            f"http://{CANDIDATE_BIND}/healthz",
            release_id,
            str(HEALTH_SECONDS),
            CANDIDATE_UNIT,
            CA_FILE,
        )
        if not started.ok:
            check["answer"] = f"it did not start: {started.stderr or started.stdout}"
        if not check["ok"]:
            check["journal"] = self.journal(name, CANDIDATE_UNIT)
        self.shell(
            name,
            "stop the new release's trial run",
            f"systemctl stop {CANDIDATE_UNIT} 2>/dev/null; "
            f"systemctl reset-failed {CANDIDATE_UNIT} 2>/dev/null; true",
        )
        return check

    def _prune(self, name: str) -> list[str]:
        """Remove releases beyond the newest KEEP and any left half-made; never the current or
        the previous one."""
        state = self.inspect(name)
        links = (state.current, state.previous)
        gone = [
            n
            for n in to_prune(state.releases, *links) + state.incomplete
            if RELEASE_ID.match(n) and n not in links
        ]
        if gone:
            paths = " ".join(shlex.quote(f"{RELEASES}/{n}") for n in gone)
            self.shell(name, "remove old releases", f"rm -rf -- {paths}")
        return gone

    def _discard(self, name: str, release_id: str) -> None:
        self.shell(
            name,
            "remove the failed release",
            f"rm -rf -- {shlex.quote(f'{RELEASES}/{release_id}')}",
        )

    # release, rollback ----------------------------------------------------------------------

    def _lock(self, name: str, what: str) -> None:
        """Take the host's release lock (one release or rollback at a time), or fail naming who
        holds it."""
        owner = (
            f"{what} by {getpass.getuser()}@{socket.gethostname()} (pid {os.getpid()}) since"
            f" {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M:%S} UTC"
        )
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            taken = self.shell(
                name,
                "take the release lock",
                f"mkdir {LOCK} && printf '%s\\n' {shlex.quote(owner)} > {LOCK}/owner",
            )
            if taken.ok:
                return
            held = self.shell(name, "read the release lock", f"cat {LOCK}/owner || true")
            holder = held.stdout.strip() or "?"
            if time.monotonic() >= deadline:
                raise ReleaseError(
                    f"{name}: another release or rollback is still running after {LOCK_WAIT:.0f}"
                    f" s: {holder}; wait for it to end (or, if none runs, remove {LOCK} on {name})"
                )
            self.progress(f"{name}: waiting for the release lock, held by {holder}")
            time.sleep(5)

    def _unlock(self, name: str) -> None:
        self.shell(name, "give the release lock back", f"rm -rf {LOCK}")

    def release(self, source: Path | None = None, *, candidate: bool = True) -> str:
        """Build the app at source (app/ by default) and release it to every app host in turn;
        its id.

        With candidate (the default), the new release first runs beside the running one and must
        pass its health check there before anything is switched. Raises ReleaseError when a host
        fails; that host is back on the release it ran before, and later hosts are not touched.
        """
        self.connect()
        with tempfile.TemporaryDirectory(prefix="roomctl-wheelhouse-") as build_root:
            house = build_wheelhouse(source or APP_SOURCE, Path(build_root), self.progress)
            self.progress(f"release {house.release_id}: {len(house.wheels)} wheels")
            archive = Path(build_root) / "wheelhouse.tar"
            with tarfile.open(archive, "w") as tar:
                tar.add(house.path, arcname="wheels")
            for name in self.hosts:
                self._lock(name, f"release {house.release_id}")
                try:
                    self._release_on(name, house, archive, candidate)
                finally:
                    self._unlock(name)
        return house.release_id

    def _release_on(self, name: str, house: Wheelhouse, archive: Path, candidate: bool) -> None:
        from pyinfra.operations import files

        rid = house.release_id
        directory = f"{RELEASES}/{rid}"
        before = self.inspect(name)
        if rid in before.releases + before.incomplete:
            raise ReleaseError(f"{name}: {directory} exists already; release again")
        self.progress(f"{name}: uploading the wheelhouse to {directory}/wheels")
        self._check(
            name,
            rid,
            self.shell(name, "make the release's directory", f"install -d -m 0755 {directory}"),
            "making its directory",
        )
        self._check(
            name,
            rid,
            self._op(
                name,
                "upload the wheelhouse",
                files.put,
                src=str(archive),
                dest=f"{directory}/wheelhouse.tar",
                user="root",
                group="root",
                mode="600",
            ),
            "uploading the wheelhouse",
        )
        self._check(
            name,
            rid,
            self.shell(
                name,
                "unpack the wheelhouse and check every wheel's digest",
                f"set -eu\ncd {directory}\n"
                "tar --extract --no-same-owner --no-same-permissions --file wheelhouse.tar\n"
                "rm wheelhouse.tar\nchmod -R u=rwX,go=rX wheels\n"
                "cd wheels && sha256sum --quiet --check SHA256SUMS",
            ),
            "unpacking the wheelhouse",
        )
        self.progress(f"{name}: installing {rid} into a new virtual environment")
        self._check(
            name,
            rid,
            self.shell(
                name,
                "make the release's virtual environment",
                f"set -eu\numask 022\ncd {directory}\npython3 -m venv venv\n"
                "venv/bin/pip install --quiet --no-index --no-cache-dir"
                " --disable-pip-version-check --find-links wheels regapp\n"
                f"printf '%s\\n' {rid} > RELEASE",
            ),
            "installing it",
        )
        self.progress(f"{name}: migrating the register (restore point roomctl-release-{rid})")
        self._check(
            name,
            rid,
            self.shell(
                name,
                "migrate the register",
                f"{directory}/venv/bin/regapp migrate --restore-point roomctl-release-{rid}",
            ),
            "migrating the register",
        )
        lab_stations = bool(self.room.hostvars[name].get("room_lab_gazetteer"))
        self.progress(
            f"{name}: loading the gazetteer shipped with {rid}"
            + (" and the lab's synthetic villages and polling stations" if lab_stations else "")
        )
        self._check(
            name,
            rid,
            self.shell(
                name,
                "load the gazetteer",
                f"{directory}/venv/bin/regapp gazetteer --missing-only"
                + (" --lab" if lab_stations else ""),
            ),
            "loading the gazetteer",
        )
        if candidate:
            self.progress(f"{name}: trying {rid} beside the running release")
            check = self._candidate(name, rid)
            if not check["ok"]:
                self._discard(name, rid)
                raise ReleaseError(
                    f"{name}: release {rid} failed and was rolled back before the switch;"
                    f" {before.current or 'no release'} still serves.\n"
                    f"the failing check: {check['url']} answered {check['answer']}"
                    f" after {check.get('seconds', 0)} s;\nlast lines of {CANDIDATE_UNIT}'s"
                    f" journal on {name}:\n" + (check.get("journal") or "(none)")
                )
        self.progress(f"{name}: switching to {rid} and restarting the app")
        self._switch(name, rid, before.current)
        restarted = self._restart(name)
        self.progress(f"{name}: checking https://{name}/healthz for {rid}")
        check = self.probe(name, rid, HEALTH_SECONDS, UNIT)
        if not restarted.ok and check["ok"]:
            check = {**check, "ok": False, "answer": restarted.stderr}
        if not check["ok"]:
            self._roll_back(name, rid, before, check)
        self.progress(f"{name}: {rid} answers ({check['seconds']} s)")
        gone = self._prune(name)
        if gone:
            self.progress(f"{name}: removed old releases {', '.join(gone)}")

    def _check(self, name: str, rid: str, out: Output, what: str) -> None:
        """Stop a release whose step failed before any switch: remove its directory."""
        if out.ok:
            return
        self._discard(name, rid)
        raise ReleaseError(
            f"{name}: release {rid} failed {what} and was rolled back before the switch; the"
            f" running release was not touched.\n{(out.stderr or out.stdout).strip()[-3000:]}"
        )

    def _roll_back(self, name: str, rid: str, before: HostState, check: Any) -> None:
        why = self._why(name, check)
        if not before.current:
            self.progress(f"{name}: {rid} does not answer and there is no release to go back to")
            self.shell(
                name,
                "stop the app and remove the failed release",
                f"systemctl stop {UNIT}; rm -f {CURRENT} {PREVIOUS}; "
                f"rm -rf -- {shlex.quote(f'{RELEASES}/{rid}')}",
            )
            raise ReleaseError(
                f"{name}: release {rid} failed and was rolled back; no release ran before it,"
                f" so the app is stopped.\n{why}"
            )
        self.progress(f"{name}: {rid} does not answer; rolling back to {before.current}")
        self._switch(name, before.current, before.previous)
        self._restart(name)
        again = self.probe(name, before.current, HEALTH_SECONDS, UNIT)
        self._discard(name, rid)
        state = (
            f"{before.current} answers again"
            if again["ok"]
            else f"{before.current} does not answer either ({again['answer']})"
        )
        raise ReleaseError(f"{name}: release {rid} failed and was rolled back: {state}.\n{why}")

    def rollback(self) -> str:
        """Switch every app host back to its previous release (the current one becomes the
        previous); the release each now runs."""
        results = []
        for name in self.hosts:
            self._lock(name, "rollback")
            try:
                results.append(self._rollback_on(name))
            finally:
                self._unlock(name)
        return ", ".join(sorted(set(results)))

    def _rollback_on(self, name: str) -> str:
        state = self.inspect(name)
        if not state.previous or state.previous not in state.releases:
            raise ReleaseError(
                f"{name}: no previous release to roll back to (current: {state.current or 'none'})"
            )
        self.progress(f"{name}: switching back from {state.current} to {state.previous}")
        self._switch(name, state.previous, state.current)
        self._restart(name)
        check = self.probe(name, state.previous, HEALTH_SECONDS, UNIT)
        if not check["ok"]:
            raise ReleaseError(
                f"{name}: rolled back to {state.previous}, which does not answer.\n"
                + self._why(name, check)
            )
        self.progress(f"{name}: {state.previous} answers ({check['seconds']} s)")
        return state.previous
