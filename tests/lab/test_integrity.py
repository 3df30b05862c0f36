"""File integrity: a change to a file that matters is reported; putting it back clears it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import ROOM_HOSTS

SUDOERS = "/etc/sudoers.d/10-roomctl"


@pytest.fixture
def tampered_sudoers(host: Callable[[str], Any], request: pytest.FixtureRequest) -> Iterator[Any]:
    """Add a rule to the managed sudoers file, as an intruder would, and put it back afterwards."""
    session = host(request.param)
    original = session.file(SUDOERS).content_string
    session.run_expect([0], f"cp -p {SUDOERS} /root/sudoers.saved")
    session.run_expect([0], f"echo 'intruder ALL=(ALL) NOPASSWD: ALL' >> {SUDOERS}")
    yield session
    session.run_expect([0], f"cp -p /root/sudoers.saved {SUDOERS} && rm /root/sudoers.saved")
    assert session.file(SUDOERS).content_string == original


@pytest.mark.destructive
@pytest.mark.parametrize("tampered_sudoers", ["app1", "db1"], indirect=True)
def test_a_sudoers_change_is_reported_by_the_integrity_check(tampered_sudoers: Any) -> None:
    result = tampered_sudoers.run("/usr/local/sbin/roomctl-integrity check")
    assert result.rc != 0, "the integrity check passed with a tampered sudoers file"
    assert SUDOERS in result.stdout, result.stdout


@pytest.mark.parametrize("name", ROOM_HOSTS)
def test_the_integrity_check_passes_on_a_converged_host(
    host: Callable[[str], Any], name: str
) -> None:
    result = host(name).run("/usr/local/sbin/roomctl-integrity check")
    assert result.rc == 0, result.stdout


@pytest.mark.parametrize("name", ["fw1", "bk2"])
def test_the_integrity_check_runs_on_a_timer(host: Callable[[str], Any], name: str) -> None:
    timer = host(name).service("roomctl-integrity-check.timer")
    assert timer.is_enabled and timer.is_running
