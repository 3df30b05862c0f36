"""Converging the room: check the inventory, run a playbook, and say what runs where.

Ansible does the work (through ansible-runner, which streams its output and hands back the
per-host counts); this module only chooses the playbook and settings and reports.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from roomctl import lab as lab_mod
from roomctl import policy
from roomctl import room as room_mod

log = logging.getLogger(__name__)

PLAYBOOKS = room_mod.REPO / "playbooks"
CONFIG = room_mod.REPO / "ansible.cfg"
STOCK_CONFIG = room_mod.REPO / "benchmarks" / "stock-ansible.cfg"
# The services the summary reports where a host has them, by unit, with the name shown.
WATCHED_SERVICES = {
    "ssh": "ssh",
    "chrony": "time",
    "systemd-journal-upload": "log-upload",
    "systemd-journal-remote.socket": "log-collector",
    "apt-cacher-ng": "package-proxy",
    "roomctl-integrity-check.timer": "integrity",
    "postgresql@15-main": "register",
    "nginx": "web",
    "regapp": "app",
}


class PreflightError(RuntimeError):
    """The inventory failed its checks; no host was touched."""


@dataclass
class Result:
    """What a converge did, per host."""

    target: str
    check: bool
    seconds: float
    status: str
    stats: dict[str, dict[str, int]] = field(default_factory=dict)
    services: dict[str, dict[str, str]] = field(default_factory=dict)
    zones: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether every host converged without failing or being unreachable."""
        return self.status == "successful"

    def changed(self) -> dict[str, int]:
        """Changed tasks per host."""
        return {host: counts.get("changed", 0) for host, counts in self.stats.items()}


def vault_file_for(inventory: Path, given: Path | None) -> Path | None:
    """The vault password file: the one given, ANSIBLE_VAULT_PASSWORD_FILE, or the lab's."""
    if given:
        return given
    if os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE"):
        return Path(os.environ["ANSIBLE_VAULT_PASSWORD_FILE"])
    if inventory.resolve() == room_mod.LAB_INVENTORY.resolve():
        return lab_mod.STATE_DIR / "vault-pass"
    return None


def preflight(inventory: Path, vault_password_file: Path | None) -> room_mod.Room:
    """Load and check an inventory; raise PreflightError naming every problem and its fix."""
    vault = inventory / "group_vars" / "all" / "vault.yml"
    if vault.exists() and (vault_password_file is None or not vault_password_file.exists()):
        raise PreflightError(
            f"{vault} needs a vault password and no password file was found; pass "
            "--vault-password-file FILE (or set ANSIBLE_VAULT_PASSWORD_FILE)"
        )
    if vault.exists() and not vault.read_text(errors="replace").startswith("$ANSIBLE_VAULT"):
        raise PreflightError(
            f"{vault} is not encrypted; encrypt it now: ansible-vault encrypt {vault}"
        )
    try:
        room = room_mod.load(inventory, vault_password_file)
    except Exception as error:  # Ansible raises its own types for a broken inventory
        hint = ""
        if "decrypt" in str(error).lower():
            hint = f"; is {vault_password_file} the password of {vault}?"
        raise PreflightError(f"{inventory} cannot be read: {error}{hint}") from error
    problems = policy.validate(room.groups, room.hostvars, inventory)
    if problems:
        raise PreflightError(str(policy.InventoryError(str(inventory), problems)))
    return room


# How Ansible runs: "tuned" is the product's setting; the others exist to measure its gains.
PROFILES = ("tuned", "no-mitogen", "stock")


def _env(inventory: Path, vault_password_file: Path | None, profile: str) -> dict[str, str]:
    env = {
        "ANSIBLE_CONFIG": str(STOCK_CONFIG if profile == "stock" else CONFIG),
        "ANSIBLE_ROLES_PATH": str(room_mod.REPO / "roles"),
        "ANSIBLE_ACTION_PLUGINS": str(room_mod.REPO / "plugins" / "action"),
        "ANSIBLE_FILTER_PLUGINS": str(room_mod.REPO / "plugins" / "filter"),
        "ANSIBLE_FORCE_COLOR": "1" if os.isatty(1) else "0",
        "ROOMCTL_LAB_STATE": str(lab_mod.STATE_DIR),
        # Ansible of the environment roomctl runs in, however roomctl was started.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    if profile == "tuned":
        import ansible_mitogen

        strategies = Path(ansible_mitogen.__file__).parent / "plugins" / "strategy"
        env["ANSIBLE_STRATEGY_PLUGINS"] = str(strategies)
        env["ANSIBLE_STRATEGY"] = "mitogen_linear"
    if vault_password_file:
        env["ANSIBLE_VAULT_PASSWORD_FILE"] = str(vault_password_file.resolve())
    return env


def _run(
    *,
    inventory: Path,
    env: dict[str, str],
    playbook: Path | None = None,
    cmdline: list[str] | None = None,
    module: str | None = None,
    module_args: str | None = None,
    host_pattern: str | None = None,
    quiet: bool = False,
    extra_vars: dict[str, Any] | None = None,
) -> Any:
    import ansible_runner

    with tempfile.TemporaryDirectory(prefix="roomctl-run-") as private:
        kwargs: dict[str, Any] = {
            "private_data_dir": private,
            "project_dir": str(room_mod.REPO),
            "inventory": str(inventory.resolve()),
            "envvars": env,
            "quiet": quiet,
            "cmdline": " ".join(cmdline or []),
            "settings": {"suppress_ansible_output": quiet},
        }
        if extra_vars:
            kwargs["extravars"] = extra_vars
        if playbook is not None:
            kwargs["playbook"] = str(playbook)
        else:
            kwargs.update(module=module, module_args=module_args, host_pattern=host_pattern)
        runner = ansible_runner.run(**kwargs)
        events = list(runner.events) if module else []
        return runner.status, runner.stats or {}, events


def services(inventory: Path, env: dict[str, str], hosts: list[str]) -> dict[str, dict[str, str]]:
    """The state of the watched services on each host, in one SSH round per host."""
    args = (
        f"for unit in {' '.join(WATCHED_SERVICES)}; do "
        'printf "%s=%s\\n" "$unit" "$(systemctl is-active "$unit" 2>/dev/null)"; done'
    )
    _, _, events = _run(
        inventory=inventory,
        env=env,
        module="ansible.builtin.shell",
        module_args=args,
        host_pattern=":".join(hosts),
        quiet=True,
    )
    found: dict[str, dict[str, str]] = {}
    for event in events:
        if event.get("event") != "runner_on_ok":
            continue
        data = event["event_data"]
        states = {}
        for line in data["res"].get("stdout", "").splitlines():
            unit, _, state = line.partition("=")
            if state in ("active", "activating", "failed"):
                states[unit] = state
        found[data["host"]] = states
    return found


def converge(
    target: str,
    *,
    inventory: Path,
    check: bool = False,
    diff: bool = False,
    limit: str | None = None,
    vault_password_file: Path | None = None,
    profile: str = "tuned",
    progress: Callable[[str], None] = lambda _: None,
    summary: bool = True,
    extra_vars: dict[str, Any] | None = None,
) -> Result:
    """Check the inventory, then run playbooks/TARGET.yml against it."""
    playbook = PLAYBOOKS / f"{target}.yml"
    if not re.fullmatch(r"[a-z_]+", target) or not playbook.exists() or target == "preflight":
        choices = sorted(p.stem for p in PLAYBOOKS.glob("*.yml") if p.stem != "preflight")
        raise PreflightError(f"no playbook {target!r}; choose one of: {', '.join(choices)}")
    vault_password_file = vault_file_for(inventory, vault_password_file)
    room = preflight(inventory, vault_password_file)
    progress(f"inventory {inventory} is sound: {len(room.hosts('room'))} hosts")
    env = _env(inventory, vault_password_file, profile)
    cmdline = []
    if check:
        cmdline.append("--check")
    if diff:
        cmdline.append("--diff")
    if limit and not re.fullmatch(r"[A-Za-z0-9_.:!&*,-]+", limit):
        raise PreflightError(
            f"--limit {limit!r} is not a host pattern; name hosts or groups, e.g. db1,app_servers"
        )
    if limit:
        cmdline += ["--limit", limit]
    mode = "dry run of" if check else "converging"
    progress(f"{mode} {playbook.relative_to(room_mod.REPO)}")
    started = time.monotonic()
    status, stats, _ = _run(
        inventory=inventory, env=env, playbook=playbook, cmdline=cmdline, extra_vars=extra_vars
    )
    seconds = time.monotonic() - started
    per_host: dict[str, dict[str, int]] = {}
    for key in ("ok", "changed", "failures", "dark", "skipped", "rescued", "ignored"):
        for host, count in (stats.get(key) or {}).items():
            per_host.setdefault(host, {})[key] = count
    per_host.pop("localhost", None)
    result = Result(
        target=target,
        check=check,
        seconds=seconds,
        status=status,
        stats=per_host,
        zones={host.name: host.zone for host in room.hosts("room")},
    )
    if summary and result.ok and not check and per_host:
        result.services = services(inventory, env, sorted(per_host))
    return result


def print_summary(console: Console, result: Result) -> None:
    """Print the closing summary: per host, what changed and what runs there."""
    verb = "would change" if result.check else "changed"
    table = Table(title=f"{result.target}: {result.status} in {result.seconds:.1f} s")
    for column in ("host", "zone", "ok", verb, "failed", "unreachable", "running"):
        table.add_column(column)
    for host in sorted(result.stats):
        counts = result.stats[host]
        running = " ".join(
            label
            for unit, label in WATCHED_SERVICES.items()
            if result.services.get(host, {}).get(unit) == "active"
        )
        table.add_row(
            host,
            result.zones.get(host, "-"),
            str(counts.get("ok", 0)),
            str(counts.get("changed", 0)),
            str(counts.get("failures", 0)),
            str(counts.get("dark", 0)),
            running or "-",
        )
    console.print(table)
    total = sum(result.changed().values())
    console.print(f"{total} task(s) {verb} across {len(result.stats)} host(s).")


def write_json(result: Result, path: Path) -> None:
    """Keep a converge's result as JSON (for tests and benchmarks)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "target": result.target,
        "check": result.check,
        "seconds": result.seconds,
        "status": result.status,
        "stats": result.stats,
        "services": result.services,
    }
    path.write_text(json.dumps(data, indent=2, sort_keys=True))
