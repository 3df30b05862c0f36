"""Benchmarks of converging the room: cold (bare lab to converged room) and warm (re-converge of a
converged room) under the product's settings and under stock Ansible settings, side by side.

Figures are wall-clock seconds of whole commands on this machine; nothing here is a test.
"""

from __future__ import annotations

import shlex
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from roomctl import converge as converge_mod
from roomctl import lab as lab_mod
from roomctl import room as room_mod
from roomctl.register import Register

PROFILE_MEANING = {
    "tuned": "product settings: pipelining, kept-open SSH, 12 forks, no fact gathering, mitogen",
    "no-mitogen": "product settings with Ansible's own linear strategy instead of mitogen's",
    "stock": "stock Ansible settings (5 forks, no pipelining)",
}


@dataclass
class Figure:
    """One measured figure."""

    what: str
    seconds: list[float]
    note: str = ""

    @property
    def median(self) -> float:
        """The median of the runs."""
        return statistics.median(self.seconds)


def _converge(profile: str, quiet: bool = True) -> tuple[float, int]:
    started = time.monotonic()
    result = converge_mod.converge(
        "site", inventory=room_mod.LAB_INVENTORY, profile=profile, summary=False
    )
    seconds = time.monotonic() - started
    if not result.ok:
        raise RuntimeError(f"converge with profile {profile} failed: {result.stats}")
    return seconds, sum(result.changed().values())


def cold(progress: Callable[[str], None]) -> list[Figure]:
    """Bare lab (no image, no hosts, no keys) to converged room: lab up, then converge."""
    missing = lab_mod.missing_packages(lab_mod.MACHINE_PACKAGES)
    progress("taking the lab down and purging its image and state")
    lab_mod.down(progress, purge=True)
    started = time.monotonic()
    lab_mod.up(progress)
    lab_seconds = time.monotonic() - started
    converge_seconds, changed = _converge("tuned")
    note = "machine packages were already installed" if not missing else ""
    return [
        Figure("cold: lab up from nothing (debootstrap, image, hosts)", [lab_seconds], note),
        Figure(f"cold: first converge ({changed} changes)", [converge_seconds]),
        Figure("cold: bare lab to converged room", [lab_seconds + converge_seconds], note),
    ]


def warm(runs: int, profiles: list[str], progress: Callable[[str], None]) -> list[Figure]:
    """Re-converge of a converged room, alternating profiles so each sees the same conditions."""
    lab_mod.up(progress)
    progress("one converge first, so every profile starts from a converged room")
    _converge("tuned")
    seconds: dict[str, list[float]] = {profile: [] for profile in profiles}
    for index in range(runs):
        for profile in profiles:
            progress(f"warm converge {index + 1}/{runs}, profile {profile}")
            elapsed, changed = _converge(profile)
            if changed:
                raise RuntimeError(f"a warm converge ({profile}) changed {changed} tasks")
            seconds[profile].append(elapsed)
    return [
        Figure(f"warm: {profile}", values, PROFILE_MEANING[profile])
        for profile, values in seconds.items()
    ]


# The register ----------------------------------------------------------------------------


@dataclass
class RegisterFigure:
    """Write throughput and replication lag of one commit mode."""

    mode: str
    tps: float
    latency_ms: float
    lag_median_ms: float
    lag_max_ms: float
    lag_max_bytes: int
    samples: int


def _pgbench_figures(output: str) -> tuple[float, float]:
    tps = latency = 0.0
    for line in output.splitlines():
        if line.startswith("tps = "):
            tps = float(line.split()[2])
        elif line.startswith("latency average = "):
            latency = float(line.split()[3])
    return tps, latency


LAG_QUERY = (
    "select coalesce(extract(epoch from replay_lag) * 1000, 0),"
    " coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0)::bigint"
    " from pg_stat_replication where application_name = {standby}"
)


def register(
    reg: Register,
    seconds: int,
    clients: int,
    scale: int,
    progress: Callable[[str], None],
) -> list[RegisterFigure]:
    """pgbench writes on the primary, synchronous then asynchronous, sampling the standby's lag.

    Runs on the primary over its local socket, in a scratch database dropped afterwards, so the
    figures are of commits and replication, not of the network from app1.
    """
    statuses = reg.status()
    primary = reg.primary(statuses)
    if primary is None:
        raise RuntimeError("no host runs as primary")
    standby = next(
        (r["name"] for r in statuses[primary].get("replicas", []) if r["state"] == "streaming"),
        None,
    )
    if standby is None:
        raise RuntimeError(f"no standby streams from {primary}")
    as_postgres = "runuser -u postgres --"
    progress(f"making a scratch database on {primary} (pgbench scale {scale})")
    reg.run(primary, f"{as_postgres} dropdb --if-exists roomctl_bench")
    reg.run(primary, f"{as_postgres} createdb roomctl_bench")
    init = reg.run(primary, f"{as_postgres} pgbench -i -q -s {scale} roomctl_bench", timeout=600)
    if init.exited != 0:
        raise RuntimeError(f"pgbench -i failed: {init.stderr}")
    figures = []
    try:
        for mode, commit in (("sync", "on"), ("async", "local")):
            progress(f"{mode} commits: {clients} clients for {seconds} s, lag sampled on {primary}")
            bench = reg.connection(primary).run(
                f"sudo -n env PGOPTIONS='-c synchronous_commit={commit}'"
                f" runuser -u postgres -- pgbench -N -c {clients} -j {min(clients, 2)}"
                f" -T {seconds} roomctl_bench",
                hide=True,
                warn=True,
                asynchronous=True,
            )
            lags: list[float] = []
            lag_bytes: list[int] = []
            deadline = time.monotonic() + seconds
            sql = LAG_QUERY.format(standby="'" + standby.replace("'", "''") + "'")
            query = shlex.quote(sql)
            while time.monotonic() < deadline:
                out = reg.run(primary, f"{as_postgres} psql -XAtq -c {query}").stdout.strip()
                if out:
                    millis, behind = out.split("|")
                    lags.append(float(millis))
                    lag_bytes.append(int(behind))
                time.sleep(0.5)
            result = bench.join()
            tps, latency = _pgbench_figures(result.stdout)
            figures.append(
                RegisterFigure(
                    mode,
                    tps,
                    latency,
                    statistics.median(lags) if lags else 0.0,
                    max(lags, default=0.0),
                    max(lag_bytes, default=0),
                    len(lags),
                )
            )
    finally:
        reg.run(primary, f"{as_postgres} dropdb --if-exists roomctl_bench")
    return figures
