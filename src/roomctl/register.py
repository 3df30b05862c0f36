"""Runbooks of the voter register across its hosts: status, switchover, failover, rejoin, sync.

Each runbook is a sequence of steps on several hosts, run over SSH with Fabric as the
administrator (through mgmt1, as the playbooks do). On each database host the steps call
roomctl-register, the command the postgresql role installs, so a runbook and a converge change a
host in the same way. Which host is primary is recorded on mgmt1; converges read that record and
refuse an inventory that disagrees with it.
"""

from __future__ import annotations

import datetime
import json
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roomctl import room as room_mod

RECORD_FILE = "/var/lib/roomctl/register/primary.json"
HELPER = "/usr/local/sbin/roomctl-register"
Progress = Callable[[str], None]


class RunbookError(RuntimeError):
    """A runbook stopped; the message says where the register stands and what to do."""


@dataclass
class Report:
    """What a runbook did, for the operator."""

    steps: list[str] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)


def _quiet(_: str) -> None:
    return None


class WholeInput:
    """Standard input handed to a remote command in one piece.

    Invoke reads a stream that is not a terminal one byte at a time, 10 ms apart (a 1 KB record
    took 12 s); this stream answers every read with all it has left.
    """

    def __init__(self, data: str | bytes) -> None:
        self.data = data

    def read(self, _size: int = -1) -> str | bytes:
        """All that is left (the size Invoke asks for is ignored)."""
        data, self.data = self.data, self.data[:0]
        return data


def invoke_timeout() -> type[Exception]:
    """Invoke's error for a command that outlived its timeout."""
    from invoke.exceptions import CommandTimedOut

    return CommandTimedOut


def paramiko_errors() -> type[Exception]:
    """The base class of paramiko's SSH errors (imported late, like Fabric)."""
    import paramiko

    return paramiko.SSHException


def _lsn(text: object) -> int:
    """A WAL location ("16/B374D848") as a number; 0 when unknown."""
    high, _, low = str(text or "").partition("/")
    try:
        return (int(high, 16) << 32) + int(low, 16)
    except ValueError:
        return 0


class Register:
    """The register's hosts, reached over SSH with Fabric."""

    def __init__(self, room: room_mod.Room, ssh_config: Path, progress: Progress = _quiet):
        self.room = room
        self.ssh_config = ssh_config
        self.progress = progress
        self.databases = [host.name for host in room.hosts("databases")]
        self.mgmt = room.hosts("mgmt")[0].name
        self._connections: dict[str, Any] = {}
        self._reached: set[str] = set()

    # transport --------------------------------------------------------------------------

    def connection(self, name: str) -> Any:
        """A Fabric connection to a room host, as the administrator, through mgmt1."""
        if name not in self._connections:
            from fabric import Config, Connection

            config = Config(runtime_ssh_path=str(self.ssh_config))
            config.load_ssh_config()
            self._connections[name] = Connection(
                name, config=config, connect_timeout=5, connect_kwargs={"banner_timeout": 10}
            )
        return self._connections[name]

    def run(
        self, name: str, command: str, *, stdin: str | None = None, timeout: float = 120
    ) -> Any:
        """Run a command as root on a host; the result, whether or not it succeeded.

        A connection that died (its host restarted) is opened anew once.
        """
        if name not in self._reached and name not in self._connections:
            self._probe(name)
        for attempt in (1, 2):
            try:
                result = self.connection(name).run(
                    f"sudo -n {command}",
                    hide=True,
                    warn=True,
                    in_stream=WholeInput(stdin) if stdin is not None else False,
                    timeout=timeout,
                )
                self._reached.add(name)
                return result
            except (OSError, EOFError, paramiko_errors()) as error:
                self._connections.pop(name).close()
                # A host reached before is tried again (it may have restarted); a host never
                # reached in this run is reported at once.
                if attempt == 2 or name not in self._reached:
                    raise RunbookError(f"{name} cannot be reached over SSH: {error}") from error
            except invoke_timeout() as error:
                raise RunbookError(
                    f"{command!r} on {name} did not finish within {timeout:.0f} s"
                ) from error
        raise AssertionError("unreachable")

    def _probe(self, name: str) -> None:
        """Fail at once for a host whose SSH port does not answer from mgmt1.

        SSH to a room host goes through mgmt1; a dead host's address would hold the jump open
        until mgmt1's own TCP connect gives up (over two minutes), while the register waits.
        """
        if name == self.mgmt:
            return
        address = self.room.host(name).address
        probe = self.run(
            self.mgmt,
            f"timeout 3 bash -c {shlex.quote(f'exec 3<>/dev/tcp/{address}/22')}",
            timeout=10,
        )
        if probe.exited != 0:
            raise RunbookError(f"{name} cannot be reached: its SSH port ({address}:22) is silent")

    def helper(self, name: str, *args: str, timeout: float = 120) -> str:
        """Run roomctl-register on a database host, failing with its own words."""
        result = self.run(name, shlex.join([HELPER, *args]), timeout=timeout)
        if result.exited != 0:
            raise RunbookError(
                f"roomctl-register {' '.join(args)} on {name} failed: "
                f"{(result.stderr or result.stdout).strip()}"
            )
        return str(result.stdout).strip()

    def close(self) -> None:
        """Close every connection."""
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()

    # state ------------------------------------------------------------------------------

    def host_status(self, name: str) -> dict[str, Any]:
        """One database host's part in the register; unreachable hosts say so."""
        try:
            result = self.run(name, f"{HELPER} status", timeout=30)
        except RunbookError as error:
            return {"host": name, "role": "unreachable", "error": str(error)}
        if result.exited != 0:
            return {"host": name, "role": "unknown", "error": result.stderr.strip()}
        status: dict[str, Any] = json.loads(result.stdout)
        return status

    def status(self) -> dict[str, dict[str, Any]]:
        """Every database host's part in the register."""
        return {name: self.host_status(name) for name in self.databases}

    def record(self) -> dict[str, Any]:
        """Which host holds the register, as recorded on mgmt1 ({} before the first converge)."""
        result = self.run(self.mgmt, f"cat {RECORD_FILE}", timeout=30)
        if result.exited != 0:
            return {}
        record: dict[str, Any] = json.loads(result.stdout)
        return record

    def write_record(self, primary: str, event: str, fenced: list[str]) -> dict[str, Any]:
        """Record a new primary on mgmt1, keeping the earlier records as history."""
        old = self.record()
        history = list(old.pop("history", []))
        if old:
            history.append(old)
        record = {
            "primary": primary,
            "event": event,
            "at": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "fenced": sorted(set(fenced)),
            "history": history[-20:],
        }
        text = json.dumps(record, indent=2, sort_keys=True) + "\n"
        result = self.run(
            self.mgmt,
            f"sh -c 'install -d -m 0750 {Path(RECORD_FILE).parent} && "
            f"cat > {RECORD_FILE}.new && mv {RECORD_FILE}.new {RECORD_FILE}'",
            stdin=text,
        )
        if result.exited != 0:
            raise RunbookError(
                f"{primary} holds the register, but the record on {self.mgmt} could not be"
                f" updated ({result.stderr.strip()}): it still names {old.get('primary')}."
                " Converge nothing until `roomctl db status` shows the record right; fix"
                f" {self.mgmt}, then run this runbook's last step again"
            )
        return record

    def primary(self, statuses: dict[str, dict[str, Any]]) -> str | None:
        """The one host running as primary, if exactly one is."""
        primaries = [name for name, s in statuses.items() if s.get("role") == "primary"]
        if len(primaries) > 1:
            raise RunbookError(
                f"{' and '.join(primaries)} all run as primary. Find the one that holds the"
                " latest registrations (`roomctl db status --json`), fence each other one with"
                " `roomctl db fence HOST`, then `roomctl db rejoin HOST`"
            )
        return primaries[0] if primaries else None

    # waits ------------------------------------------------------------------------------

    def wait_streaming(self, primary: str, standby: str, timeout: float = 120) -> float:
        """Wait until standby streams from primary with nothing left to replay; seconds taken."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            status = self.host_status(primary)
            for replica in status.get("replicas", []):
                if replica["name"] == standby and replica["state"] == "streaming":
                    return time.monotonic() - started
            time.sleep(0.5)
        raise RunbookError(f"{standby} did not stream from {primary} within {timeout:.0f} s")

    def wait_replayed(self, standby: str, lsn: str, timeout: float = 60) -> None:
        """Wait until standby has replayed WAL up to lsn."""
        deadline = time.monotonic() + timeout
        query = f"select pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn"
        while time.monotonic() < deadline:
            result = self.run(
                standby, f"runuser -u postgres -- psql -XAtq -c {shlex.quote(query)}", timeout=30
            )
            if result.exited == 0 and result.stdout.strip() == "t":
                return
            time.sleep(0.2)
        raise RunbookError(f"{standby} did not replay up to {lsn} within {timeout:.0f} s")

    def final_checkpoint(self, name: str) -> str:
        """The location of a stopped host's last checkpoint (its shutdown checkpoint)."""
        return self.helper(name, "checkpoint")

    # runbooks ---------------------------------------------------------------------------

    def _standbys(self, statuses: dict[str, dict[str, Any]], primary: str) -> list[str]:
        return [n for n, s in statuses.items() if n != primary and s.get("role") == "standby"]

    def switchover(self, to: str | None = None) -> Report:
        """Hand the primary's role to a standby with no committed row lost."""
        report = Report()
        statuses = self.status()
        old = self.primary(statuses)
        if old is None:
            raise RunbookError("no host runs as primary: use `roomctl db failover`")
        candidates = self._standbys(statuses, old)
        target = to or (candidates[0] if candidates else None)
        if target is None or target not in candidates:
            raise RunbookError(
                (f"{to} is not a running standby of {old}" if to else f"{old} has no standby")
                + f" (running standbys: {', '.join(candidates) or 'none'})"
            )
        self.wait_streaming(old, target, timeout=30)
        self.progress(f"stopping {old} cleanly: every committed row reaches {target} first")
        started = time.monotonic()
        self.helper(old, "stop")
        try:
            checkpoint = self.final_checkpoint(old)
            self.wait_replayed(target, checkpoint)
            report.steps.append(
                f"{old} stopped after a checkpoint at {checkpoint}; {target} has it"
            )
            self.progress(f"promoting {target}")
            self.helper(target, "promote")
        except RunbookError as error:
            raise RunbookError(
                f"{error}. The register has NO primary: {old} is stopped and {target} was not"
                f" promoted. Start {old} again as it was (`sudo systemctl start"
                f" postgresql@15-main` on {old}), then look at `roomctl db status`"
            ) from error
        read_only = time.monotonic() - started
        report.figures["register_read_only_s"] = read_only
        report.steps.append(f"{target} promoted: it takes writes")
        self.write_record(target, f"switchover from {old}", fenced=[])
        report.steps.append(f"recorded {target} as primary on {self.mgmt}")
        self.progress(f"{old} follows {target}")
        self.helper(old, "follow", target)
        report.figures["old_primary_streaming_s"] = self.wait_streaming(target, old)
        report.steps.append(f"{old} streams from {target} as its standby")
        return report

    def failover(self, to: str | None = None, force: bool = False) -> Report:
        """Promote a standby when the primary is dead, and fence the old primary."""
        report = Report()
        started = time.monotonic()
        record = self.record()
        statuses = self.status()
        old = record.get("primary") or self.primary(statuses)
        old_status = statuses.get(old or "", {})
        if old_status.get("role") == "primary" and not force:
            raise RunbookError(
                f"{old} is alive and takes writes: use `roomctl db switchover`"
                " (or --force if it must be cut off anyway)"
            )
        candidates = [n for n in self._standbys(statuses, old or "") if n != old]
        # The standby that has replayed the most WAL holds the most acknowledged commits.
        candidates.sort(key=lambda n: _lsn(statuses[n].get("lsn")), reverse=True)
        target = to or (candidates[0] if candidates else None)
        if target is None or target not in candidates:
            raise RunbookError(
                (f"{to} is not a running standby" if to else "no standby is running")
                + f" (standbys: {', '.join(candidates) or 'none'}); nothing was changed"
            )
        if old and old_status.get("role") != "unreachable":
            self.progress(f"fencing {old}")
            self.helper(old, "fence", f"failover to {target}")
            report.steps.append(f"{old} fenced: it takes no writes and follows nobody")
        elif old:
            report.steps.append(
                f"{old} cannot be reached: its guard fences it when PostgreSQL starts there again"
                f" and sees {target} on a later timeline. Keep {old} powered off until then"
            )
        self.progress(f"promoting {target}")
        self.helper(target, "promote")
        others = [n for n in self._standbys(statuses, old or "") if n not in (target, old)]
        if not others:
            self.helper(target, "async")
            report.steps.append(
                f"{target} has no standby left: dropped to asynchronous replication (logged);"
                f" `roomctl db rejoin {old}` brings it back to synchronous"
            )
        report.figures["register_read_only_s"] = time.monotonic() - started
        report.steps.append(f"{target} promoted: it takes writes")
        fenced = [old] if old else []
        self.write_record(target, f"failover from {old}", fenced=fenced)
        report.steps.append(f"recorded {target} as primary on {self.mgmt}, {old} as fenced")
        return report

    def _database(self, name: str) -> None:
        if name not in self.databases:
            raise RunbookError(
                f"{name} is not a database host of this inventory ({', '.join(self.databases)})"
            )

    def fence(self, name: str) -> Report:
        """Stop a host from taking writes (it runs read-only and follows nobody)."""
        self._database(name)
        self.helper(name, "fence", "fenced by roomctl db fence")
        record = self.record()
        if record:
            self.write_record(
                record.get("primary", ""),
                f"{name} fenced by hand",
                fenced=[*record.get("fenced", []), name],
            )
        return Report(steps=[f"{name} fenced: it takes no writes until `roomctl db rejoin {name}`"])

    def resume(self, name: str) -> Report:
        """Let the recorded primary take writes after its guard held it read-only."""
        self._database(name)
        record = self.record()
        if record.get("primary") != name:
            raise RunbookError(
                f"the record names {record.get('primary')} as primary, not {name}:"
                f" rejoin {name} instead"
            )
        started = time.monotonic()
        self.helper(name, "resume")
        report = Report(steps=[f"{name} takes writes again, on a new timeline"])
        report.figures["resume_s"] = time.monotonic() - started
        return report

    def rejoin(self, name: str) -> Report:
        """Bring a fenced or stale host back as a standby of the current primary (pg_rewind)."""
        self._database(name)
        report = Report()
        record = self.record()
        primary = record.get("primary")
        if not primary:
            raise RunbookError(f"no primary is recorded on {self.mgmt}: converge the room first")
        if name == primary:
            raise RunbookError(f"{name} is the recorded primary; rejoin another host")
        started = time.monotonic()
        self.progress(f"rewinding {name} to {primary}'s timeline")
        self.helper(name, "rejoin", primary, timeout=600)
        report.steps.append(f"{name} rewound (pg_rewind) and follows {primary}")
        report.figures["rejoin_s"] = time.monotonic() - started
        report.figures["streaming_s"] = self.wait_streaming(primary, name)
        status = self.host_status(primary)
        if not status.get("synchronous_standby_names"):
            self.helper(primary, "sync")
            report.steps.append(f"{primary} waits for a standby on every commit again")
        fenced = [host for host in record.get("fenced", []) if host != name]
        self.write_record(primary, f"{name} rejoined as a standby", fenced=fenced)
        return report

    def set_sync(self, enabled: bool) -> Report:
        """Make the primary wait for a standby on every commit, or stop waiting."""
        report = Report()
        statuses = self.status()
        primary = self.primary(statuses)
        if primary is None:
            raise RunbookError("no host runs as primary")
        if enabled:
            streaming = [
                r["name"]
                for r in statuses[primary].get("replicas", [])
                if r["state"] == "streaming"
            ]
            if not streaming:
                raise RunbookError(
                    f"no standby streams from {primary}: synchronous commits would wait for ever."
                    " Rejoin a standby first (`roomctl db rejoin HOST`)"
                )
        self.helper(primary, "sync" if enabled else "async")
        report.steps.append(
            f"{primary}: commits {'wait for a standby again' if enabled else 'no longer wait'}"
        )
        return report
