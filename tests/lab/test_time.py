"""Time: mgmt1 serves it, every other host follows it."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from conftest import MANAGED_HOSTS
from probes import journal_of, wait_for

from roomctl import room as room_mod


def _tracking(session: Any) -> str:
    return str(session.run("chronyc -n tracking").stdout)


@pytest.mark.parametrize("name", MANAGED_HOSTS)
def test_clock_is_synchronised_to_mgmt1(
    room: room_mod.Room, host: Callable[[str], Any], name: str
) -> None:
    session = host(name)
    mgmt1 = room.host("mgmt1").address

    def follows_mgmt1() -> bool:
        tracking = _tracking(session)
        reference = re.search(r"^Reference ID\s*:\s*\S+ \((\S+)\)", tracking, re.M)
        leap = re.search(r"^Leap status\s*:\s*(.+)$", tracking, re.M)
        synchronised = bool(leap and leap.group(1) == "Normal")
        return bool(reference and reference.group(1) == mgmt1 and synchronised)

    assert wait_for(follows_mgmt1, 30), (
        f"{name} does not follow mgmt1 ({mgmt1}):\n{_tracking(session)}\n"
        f"{journal_of(session, 'chrony')}"
    )


def test_mgmt1_serves_time_to_the_room(host: Callable[[str], Any]) -> None:
    clients = host("mgmt1").run("chronyc -n clients").stdout
    served = [line.split()[0] for line in clients.splitlines()[2:] if line.strip()]
    assert len(served) >= len(MANAGED_HOSTS), f"mgmt1 served time only to {served}"
