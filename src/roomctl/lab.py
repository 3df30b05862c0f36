"""The lab: every host of the room as a systemd container on this machine, one network per zone.

The lab is built from the lab inventory alone (no second host list). fw1 is attached to every
zone and is the only path between them: zone networks are isolated from each other on this
machine, and every other host routes to the other zones through fw1's address in its own zone.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from roomctl import room as room_mod
from roomctl import secrets
from roomctl.shell import CommandError, output, run

log = logging.getLogger(__name__)

STATE_DIR = Path(os.environ.get("ROOMCTL_LAB_STATE", "/var/lib/roomctl/lab"))
IMAGE_DIR = room_mod.REPO / "lab" / "image"
BASE_IMAGE = "localhost/roomctl-lab-base:bookworm"
IMAGE = "localhost/roomctl-lab:bookworm"
PREFIX = "lab-"
LABEL = "io.roomctl.lab"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
BASE_PACKAGES = [
    "systemd",
    "systemd-sysv",
    "dbus",
    "python3",
    "python3-apt",
    "openssh-server",
    "sudo",
    "iproute2",
    "procps",
    "iputils-ping",
    "netcat-openbsd",
    "less",
    "ca-certificates",
]
# What the lab tests add: the browser test drives Debian's headless Chromium from the office
# network, trusting the room's CA through an NSS database made with certutil.
TEST_PACKAGES = ["chromium", "chromium-driver", "libnss3-tools"]
MACHINE_PACKAGES = [
    "podman",
    "runc",
    "netavark",
    "aardvark-dns",
    "iptables",
    "debootstrap",
    "zstd",
    "openssh-client",
]
CONTAINERS_CONF = Path("/etc/containers/containers.conf")
CONTAINERS_CONF_TEXT = """\
# Written by roomctl for the lab (see shared lab notes in the README). Podman's defaults ask for
# more open files than this machine allows, and crun refuses its hybrid cgroups.
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=20000:20000"]

[engine]
runtime = "runc"

[network]
network_backend = "netavark"
"""

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


@dataclass
class HostStatus:
    """What the lab knows of one host."""

    name: str
    zone: str
    address: str
    container: str
    systemd: str


def container(name: str) -> str:
    """The container name of a lab host."""
    return f"{PREFIX}{name}"


def network(zone: str) -> str:
    """The podman network of a zone."""
    return f"{PREFIX}{zone}"


# The machine -------------------------------------------------------------------------------


def missing_packages(packages: Iterable[str]) -> list[str]:
    """The Debian packages of a list that are not installed on this machine."""
    missing = []
    for package in packages:
        status = run(["dpkg-query", "-W", "-f=${Status}", package], check=False).stdout
        if "install ok installed" not in status:
            missing.append(package)
    return missing


def prepare_machine(progress: Progress = _quiet, *, for_tests: bool = False) -> None:
    """Install and configure what the lab needs on this machine; a no-op when it is in place."""
    if os.geteuid() != 0:
        raise CommandError("The lab runs rootful podman: run roomctl lab as root (sudo).")
    missing = missing_packages(MACHINE_PACKAGES + (TEST_PACKAGES if for_tests else []))
    if missing:
        progress(f"installing {' '.join(missing)} from Debian")
        env_prefix = ["env", "DEBIAN_FRONTEND=noninteractive"]
        run([*env_prefix, "apt-get", "update", "-qq"], hint="Check this machine's apt sources.")
        run(
            [*env_prefix, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
            hint="Check this machine's apt sources.",
        )
    if not CONTAINERS_CONF.exists() or CONTAINERS_CONF.read_text() != CONTAINERS_CONF_TEXT:
        progress(f"writing {CONTAINERS_CONF}")
        CONTAINERS_CONF.parent.mkdir(parents=True, exist_ok=True)
        CONTAINERS_CONF.write_text(CONTAINERS_CONF_TEXT)
    # Bridged traffic must not pass this machine's iptables, or its NAT rewrites traffic between
    # a zone's hosts and fw1 (see the README's lab section).
    bridge_setting = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
    if bridge_setting.exists() and bridge_setting.read_text().strip() != "0":
        progress("setting net.bridge.bridge-nf-call-iptables = 0")
        bridge_setting.write_text("0\n")


# Image -------------------------------------------------------------------------------------


def _image_label(image: str, label: str) -> str | None:
    result = run(
        ["podman", "image", "inspect", "--format", f'{{{{index .Labels "{label}"}}}}', image],
        check=False,
    )
    if result.returncode != 0:
        return None
    return result.stdout.strip()


def _recipe_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted(IMAGE_DIR.iterdir()):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _base_digest() -> str:
    return hashlib.sha256(" ".join([DEBIAN_MIRROR, *BASE_PACKAGES]).encode()).hexdigest()[:16]


def build_image(progress: Progress = _quiet, force: bool = False) -> None:
    """Build the lab image from a debootstrap tree, without any container registry."""
    base_digest = _base_digest()
    if force or _image_label(BASE_IMAGE, f"{LABEL}.base") != base_digest:
        tarball = STATE_DIR / "image" / f"bookworm-{base_digest}.tar.zst"
        if not tarball.exists():
            progress("debootstrap of Debian bookworm (about a minute)")
            tarball.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(prefix="roomctl-rootfs-") as tree:
                run(
                    [
                        "debootstrap",
                        "--variant=minbase",
                        f"--include={','.join(BASE_PACKAGES)}",
                        "bookworm",
                        tree,
                        DEBIAN_MIRROR,
                    ],
                    hint="debootstrap needs this machine's Debian mirror.",
                )
                partial = tarball.with_suffix(".partial")
                run(["tar", "--zstd", "-C", tree, "-cf", str(partial), "."])
                partial.rename(tarball)
        progress("importing the base tree into podman")
        run(
            [
                "podman",
                "import",
                "--change",
                f"LABEL {LABEL}.base={base_digest}",
                str(tarball),
                BASE_IMAGE,
            ]
        )
    recipe = _recipe_digest() + base_digest
    if force or _image_label(IMAGE, f"{LABEL}.recipe") != recipe:
        progress("building the lab host image")
        run(
            [
                "podman",
                "build",
                "--pull=never",
                "--label",
                f"{LABEL}.recipe={recipe}",
                "-t",
                IMAGE,
                str(IMAGE_DIR),
            ]
        )


# Keys and secrets --------------------------------------------------------------------------


def ensure_keys() -> None:
    """Make the lab's administrator and break-glass key pairs, kept outside the repository."""
    ssh_dir = STATE_DIR / "ssh"
    ssh_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(STATE_DIR, 0o700)
    for name in ("ops_ed25519", "breakglass_ed25519"):
        key = ssh_dir / name
        if not key.exists():
            comment = f"lab-{name}"
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(key)])


# Networks and hosts ------------------------------------------------------------------------


def _existing(kind: str) -> set[str]:
    if kind == "network":
        names = output(["podman", "network", "ls", "--format", "{{.Name}}"])
    else:
        names = output(["podman", "ps", "-a", "--format", "{{.Names}}"])
    return {name for name in names.splitlines() if name.startswith(PREFIX)}


def _ensure_networks(room: room_mod.Room, progress: Progress) -> None:
    present = _existing("network")
    for zone, spec in room.zones.items():
        name = network(zone)
        net = ipaddress.ip_network(spec["cidr"])
        gateway = str(next(net.hosts()))
        if name in present:
            info = json.loads(output(["podman", "network", "inspect", name]))[0]
            subnets = [s.get("subnet") for s in info.get("subnets", [])]
            if subnets == [str(net)]:
                continue
            progress(f"network {name} has subnets {subnets}, want {net}: recreating it")
            _remove_containers_on(name)
            run(["podman", "network", "rm", "-f", name])
        progress(f"creating network {name} ({net})")
        run(
            [
                "podman",
                "network",
                "create",
                "--subnet",
                str(net),
                "--gateway",
                gateway,
                "--opt",
                "isolate=true",
                "--disable-dns",
                "--label",
                f"{LABEL}=1",
                name,
            ]
        )


def _remove_containers_on(network_name: str) -> None:
    names = output(
        ["podman", "ps", "-a", "--filter", f"network={network_name}", "--format", "{{.Names}}"]
    )
    for name in names.splitlines():
        run(["podman", "rm", "-f", "-t", "5", name])


def _routes(room: room_mod.Room, host: room_mod.Host) -> list[str]:
    """The lab cabling of one host, as `ip -batch` lines."""
    if host.is_router:
        return ["route flush exact 0.0.0.0/0"]
    router = room.router_in(host.zone)
    if router is None:
        return []
    lines = []
    for zone, spec in room.zones.items():
        if zone != host.zone:
            lines.append(f"route replace {spec['cidr']} via {router}")
    keeps_uplink = "mgmt" in host.groups and room.setting("room_package_route") == "direct"
    if not keeps_uplink:
        lines += ["route flush exact 0.0.0.0/0", f"route add default via {router}"]
    return lines


def _host_spec(host: room_mod.Host) -> str:
    """What a host's container was made from; a change means the container is made anew."""
    networks = host.router_addresses or {host.zone: host.address}
    return json.dumps({"image": _recipe_digest(), "networks": networks}, sort_keys=True)


def _create_host(host: room_mod.Host) -> None:
    networks = host.router_addresses or {host.zone: host.address}
    argv = [
        "podman",
        "run",
        "--detach",
        "--name",
        container(host.name),
        "--hostname",
        host.name,
        "--systemd=always",
        "--cap-add",
        "NET_ADMIN",
        "--cap-add",
        "NET_RAW",
        "--no-hosts",
        "--label",
        f"{LABEL}=1",
        "--label",
        f"{LABEL}.spec={_host_spec(host)}",
    ]
    for zone, address in networks.items():
        argv += ["--network", f"{network(zone)}:ip={address}"]
    if host.is_router:
        argv += ["--sysctl", "net.ipv4.ip_forward=1"]
    argv.append(IMAGE)
    run(argv, hint="`roomctl lab down` clears what an interrupted run left behind.")


def _container_state(name: str) -> tuple[str, str]:
    """A container's state as podman records it, and the spec it was made from.

    Podman keeps its record of running containers under /run, which is on disk here. When this
    machine's processes are killed (a stopped session, a power cut) the record outlives the
    container's processes: podman goes on saying "running" and refuses to start or exec. Such a
    container is reported as "stale".
    """
    result = run(
        [
            "podman",
            "inspect",
            "--format",
            f'{{{{.State.Status}}}}|{{{{.State.Pid}}}}|{{{{index .Config.Labels "{LABEL}.spec"}}}}',
            name,
        ],
        check=False,
    )
    if result.returncode != 0:
        return "absent", ""
    status, pid, spec = result.stdout.strip().split("|", 2)
    if status in ("running", "stopping", "paused") and not _alive(name, pid):
        return "stale", spec
    return status, spec


def _alive(name: str, pid: str) -> bool:
    """Whether a container podman calls running still has its processes."""
    if not pid.isdigit() or pid == "0" or not Path(f"/proc/{pid}").exists():
        return False
    return run(["podman", "exec", name, "true"], check=False, timeout=30).returncode == 0


def exec_in(host: str, argv: list[str], **kwargs: object) -> str:
    """Run a command inside a lab host as root, through podman (not through the room's SSH)."""
    return output(["podman", "exec", container(host), *argv], **kwargs)


def _wait_for_systemd(name: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    state = "unknown"
    while time.monotonic() < deadline:
        result = run(
            ["podman", "exec", container(name), "systemctl", "is-system-running"], check=False
        )
        state = result.stdout.strip() or "unknown"
        if state in ("running", "degraded"):
            return state
        status, _ = _container_state(container(name))
        if status not in ("running", "created", "initialized"):
            raise CommandError(_why_stopped(name, status))
        time.sleep(0.3)
    return state


def _why_stopped(name: str, status: str) -> str:
    """An error for a lab host whose container stopped while it booted, with its last words."""
    detail = run(
        [
            "podman",
            "inspect",
            "--format",
            "exit {{.State.ExitCode}} {{.State.Error}}",
            container(name),
        ],
        check=False,
    ).stdout.strip()
    logs = run(["podman", "logs", "--tail", "25", container(name)], check=False)
    last = (logs.stdout + logs.stderr).strip() or "(no output)"
    return (
        f"lab host {name} stopped while it booted (container {container(name)}: {status},"
        f" {detail}). Its last output:\n{last}\n"
        "`roomctl lab down` then `roomctl lab up` makes every host anew."
    )


def _cable(room: room_mod.Room, host: room_mod.Host) -> None:
    """Write the host's routes and the administrator's key, and apply the routes now."""
    routes = "\n".join(_routes(room, host)) + "\n"
    pubkey = (STATE_DIR / "ssh" / "ops_ed25519.pub").read_text()
    script = (
        "set -e; install -d -m 0755 /etc/roomctl-lab;"
        " cat > /etc/roomctl-lab/routes.new;"
        " mv /etc/roomctl-lab/routes.new /etc/roomctl-lab/routes;"
        " systemctl restart lab-routes.service;"
        " install -d -m 0700 -o ops -g ops /home/ops/.ssh;"
        f" grep -qxF '{pubkey.strip()}' /home/ops/.ssh/authorized_keys 2>/dev/null"
        f" || echo '{pubkey.strip()}' >> /home/ops/.ssh/authorized_keys;"
        " chown ops:ops /home/ops/.ssh/authorized_keys; chmod 0600 /home/ops/.ssh/authorized_keys"
    )
    run(["podman", "exec", "-i", container(host.name), "sh", "-c", script], input_text=routes)


def lab_hosts(room: room_mod.Room) -> list[room_mod.Host]:
    """Every host the lab runs: the room's and the test clients."""
    return room.hosts("room") + room.hosts("clients")


def _ensure_hosts(room: room_mod.Room, progress: Progress) -> dict[str, str]:
    created = []
    for host in lab_hosts(room):
        name = container(host.name)
        status, spec = _container_state(name)
        if status == "stale":
            progress(
                f"{host.name}: podman records it running but its processes are gone"
                " (this machine was stopped or its processes killed): making it anew"
            )
            run(["podman", "rm", "-f", "-t", "0", name])
            status = "absent"
        elif status != "absent" and spec != _host_spec(host):
            progress(f"{host.name}: its container is out of date, making it anew")
            run(["podman", "rm", "-f", "-t", "5", name])
            status = "absent"
        if status == "absent":
            progress(f"{host.name}: starting ({host.zone}, {host.address})")
            _create_host(host)
            created.append(host.name)
        elif status != "running":
            progress(f"{host.name}: starting its stopped container")
            run(["podman", "start", name])
    states = {}
    for host in lab_hosts(room):
        states[host.name] = _wait_for_systemd(host.name)
        _cable(room, host)
    if created:
        # Host keys are new: forget the old ones of these names.
        known = STATE_DIR / "ssh" / "known_hosts"
        if known.exists():
            for name in created:
                address = room.host(name).address
                run(["ssh-keygen", "-R", address, "-f", str(known)], check=False)
    return states


def start_stranger(name: str, zone: str, address: str) -> str:
    """Put a host that is in no inventory straight onto a zone's network (bypassing fw1)."""
    run(
        [
            "podman",
            "run",
            "--detach",
            "--replace",
            "--name",
            container(name),
            "--label",
            f"{LABEL}=1",
            "--network",
            f"{network(zone)}:ip={address}",
            IMAGE,
            "sleep",
            "900",
        ]
    )
    return container(name)


def remove_stranger(name: str) -> None:
    """Remove a host made by start_stranger."""
    run(["podman", "rm", "-f", "-t", "0", container(name)], check=False)


def write_ssh_config(room: room_mod.Room) -> Path:
    """An SSH config that reaches every room host as the administrator, jumping through mgmt1."""
    ssh_dir = STATE_DIR / "ssh"
    jump = room.hosts("mgmt")[0]
    common = [
        "  User ops",
        f"  IdentityFile {ssh_dir / 'ops_ed25519'}",
        "  IdentitiesOnly yes",
        f"  UserKnownHostsFile {ssh_dir / 'known_hosts'}",
        "  StrictHostKeyChecking accept-new",
        "  ControlMaster auto",
        f"  ControlPath {STATE_DIR / 'cm'}/%C",
        "  ControlPersist 120s",
        "  ServerAliveInterval 15",
        "  ConnectTimeout 10",
    ]
    blocks = []
    for host in room.hosts("room"):
        lines = [f"Host {host.name} {host.address}", f"  HostName {host.address}", *common]
        if host.name != jump.name:
            lines.append(f"  ProxyJump {jump.name}")
        blocks.append("\n".join(lines))
    (STATE_DIR / "cm").mkdir(exist_ok=True)
    path = STATE_DIR / "ssh_config"
    path.write_text("# Written by roomctl lab up.\n\n" + "\n\n".join(blocks) + "\n")
    return path


# Commands ----------------------------------------------------------------------------------


def up(progress: Progress = _quiet) -> dict[str, str]:
    """Bring the whole lab up; what is already there and right is kept as it is."""
    prepare_machine(progress)
    ensure_keys()
    secrets.ensure_lab_vault(room_mod.LAB_INVENTORY, STATE_DIR / "vault-pass", progress)
    room = room_mod.load(room_mod.LAB_INVENTORY, STATE_DIR / "vault-pass")
    build_image(progress)
    _ensure_networks(room, progress)
    states = _ensure_hosts(room, progress)
    write_ssh_config(room)
    return states


def down(progress: Progress = _quiet, purge: bool = False) -> None:
    """Remove the lab's hosts and networks; with purge, also its images and state."""
    if shutil.which("podman") is None:
        progress("podman is not installed: no lab to take down")
        return
    names = sorted(_existing("container"))
    if names:
        progress(f"removing {len(names)} hosts")
        run(["podman", "rm", "-f", "-t", "5", *names])
    for name in sorted(_existing("network")):
        run(["podman", "network", "rm", "-f", name])
    known = STATE_DIR / "ssh" / "known_hosts"
    known.unlink(missing_ok=True)
    shutil.rmtree(STATE_DIR / "facts", ignore_errors=True)
    if purge:
        progress("removing the lab images and state")
        run(["podman", "rmi", "-f", IMAGE, BASE_IMAGE], check=False)
        shutil.rmtree(STATE_DIR, ignore_errors=True)
        (room_mod.LAB_INVENTORY / "group_vars" / "all" / "vault.yml").unlink(missing_ok=True)


def status() -> list[HostStatus]:
    """The state of every lab host: its container and its systemd."""
    room = room_mod.load(room_mod.LAB_INVENTORY, STATE_DIR / "vault-pass")
    found = []
    podman = shutil.which("podman") is not None
    for host in lab_hosts(room):
        state, _ = _container_state(container(host.name)) if podman else ("absent", "")
        systemd = "-"
        if state == "running":
            result = run(
                ["podman", "exec", container(host.name), "systemctl", "is-system-running"],
                check=False,
            )
            systemd = result.stdout.strip() or "unknown"
        found.append(HostStatus(host.name, host.zone, host.address, state, systemd))
    return found
