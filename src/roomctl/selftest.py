"""The project's whole test run, in the order that fails fastest: lint, unit, molecule, lab.

Each step is a maintained tool run as a command; this module only orders them, sets up what they
need (the lab machine and image) and reports which step failed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from roomctl import lab as lab_mod
from roomctl import room as room_mod

PYTHON_PATHS = ["src", "tests", "plugins", "molecule", "app"]


@dataclass
class Step:
    """One step of the test run."""

    name: str
    group: str
    argv: list[str]


def steps() -> list[Step]:
    """Every step, in order."""
    return [
        Step("yamllint", "lint", ["yamllint", "--strict", "."]),
        Step("ansible-lint (production profile)", "lint", ["ansible-lint", "--strict"]),
        Step("ruff check", "lint", ["ruff", "check", *PYTHON_PATHS]),
        Step("ruff format", "lint", ["ruff", "format", "--check", *PYTHON_PATHS]),
        Step("mypy", "lint", ["mypy"]),
        Step("molecule: base role", "molecule", ["molecule", "test", "-s", "base"]),
        # Last, so that its closing line is the run's: unit tests, then the lab.
        Step(
            "pytest: unit and lab",
            "pytest",
            ["pytest", "-p", "no:cacheprovider", "tests", "app/tests"],
        ),
    ]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["ANSIBLE_CONFIG"] = str(room_mod.REPO / "ansible.cfg")
    env["ANSIBLE_ROLES_PATH"] = str(room_mod.REPO / "roles")
    env["ANSIBLE_ACTION_PLUGINS"] = str(room_mod.REPO / "plugins" / "action")
    env["ANSIBLE_FILTER_PLUGINS"] = str(room_mod.REPO / "plugins" / "filter")
    env.setdefault("ROOMCTL_LAB_STATE", str(lab_mod.STATE_DIR))
    return env


def run(groups: set[str], progress: Callable[[str], None]) -> int:
    """Run the chosen groups of steps; return the exit code of the first that fails, else 0."""
    chosen = [step for step in steps() if step.group in groups]
    if {"molecule", "lab"} & groups:
        progress("preparing this machine for test hosts (podman, lab image)")
        lab_mod.prepare_machine(progress, for_tests=True)
        lab_mod.ensure_keys()
        lab_mod.build_image(progress)
    argv_extra: dict[str, list[str]] = {}
    if "pytest" in groups and "lab" not in groups:
        argv_extra["pytest"] = ["tests/unit", "app/tests"]
    for step in chosen:
        argv = step.argv
        if step.group in argv_extra:
            argv = [*argv[:-2], *argv_extra[step.group]]
        progress(f"{step.name}: {' '.join(argv)}")
        started = time.monotonic()
        code = subprocess.run(argv, cwd=room_mod.REPO, env=_env(), check=False).returncode
        seconds = time.monotonic() - started
        if code != 0:
            progress(f"{step.name} failed (exit {code}) after {seconds:.0f} s")
            return code
        progress(f"{step.name} passed in {seconds:.0f} s")
    progress(f"all {len(chosen)} steps passed")
    return 0
