"""The lab itself: fw1 is the only path between zones; the lab machine routes none."""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from roomctl import lab as lab_mod
from roomctl import room as room_mod

PROBE = "python3 -c 'import socket,sys; socket.create_connection((sys.argv[1], 22), 3)' {}"


def test_a_zone_reaches_another_through_fw1(
    room: room_mod.Room, host: Callable[[str], Any]
) -> None:
    route = host("mgmt1").run(f"ip route get {room.host('db1').address}").stdout
    assert f"via {room.router_in('mgmt')} " in route, route
    result = host("mgmt1").run(PROBE.format(room.host("db1").address))
    assert result.rc == 0, result.stderr


@pytest.fixture
def mgmt1_routed_around_fw1(room: room_mod.Room, host: Callable[[str], Any]) -> Iterator[Any]:
    """mgmt1 sends traffic for the servers zone to the lab machine instead of fw1, for one test."""
    session = host("mgmt1")
    servers = room.zones["servers"]["cidr"]
    # The lab machine's own address on the mgmt network (the podman network's gateway).
    machine = next(ipaddress.ip_network(room.zones["mgmt"]["cidr"]).hosts())
    session.run_expect([0], f"ip route replace {servers} via {machine}")
    yield session
    session.run_expect([0], "systemctl restart lab-routes.service")


@pytest.mark.destructive
def test_the_lab_machine_does_not_route_between_zones(
    room: room_mod.Room, mgmt1_routed_around_fw1: Any
) -> None:
    result = mgmt1_routed_around_fw1.run(PROBE.format(room.host("db1").address))
    assert result.rc != 0, "mgmt1 reached the servers zone around fw1, through the lab machine"


def _podman(*argv: str) -> str:
    return subprocess.run(
        ["podman", *argv], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.mark.destructive
def test_a_host_whose_processes_were_killed_is_made_anew(converged: Any) -> None:
    """What a stopped session or a power cut leaves: podman still says running, nothing runs."""
    name = lab_mod.container("client1")
    pids = _podman("inspect", "--format", "{{.State.Pid}} {{.State.ConmonPid}}", name).split()
    for pid in pids:
        os.kill(int(pid), signal.SIGKILL)
    time.sleep(0.5)
    assert _podman("inspect", "--format", "{{.State.Status}}", name) == "running"
    states = lab_mod.up()
    assert states["client1"] in ("running", "degraded")
    assert _podman("exec", name, "cat", "/etc/roomctl-lab/routes")
