"""The lab itself: fw1 is the only path between zones; the lab machine routes none."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from typing import Any

import pytest

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
