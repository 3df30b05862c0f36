"""Benchmarks of converging the room: cold (bare lab to converged room) and warm (re-converge of a
converged room) under the product's settings and under stock Ansible settings, side by side.

Figures are wall-clock seconds of whole commands on this machine; nothing here is a test.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from roomctl import converge as converge_mod
from roomctl import lab as lab_mod
from roomctl import room as room_mod

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
