"""Packages: through mgmt1's proxy only; security updates automatic, never for the room's
services, never rebooting."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from conftest import MANAGED_HOSTS

from roomctl import room as room_mod

NEVER_UPGRADED = ["postgresql-15", "libpq5", "nginx", "nut-server", "nut-client"]


@pytest.mark.parametrize("name", ["db1", "bk2", "fw1"])
def test_apt_fetches_through_the_proxy_on_mgmt1(
    room: room_mod.Room, host: Callable[[str], Any], name: str
) -> None:
    session = host(name)
    update = session.run("apt-get update -q")
    assert update.rc == 0, update.stderr
    address = room.host(name).address
    log = host("mgmt1").run("cat /var/log/apt-cacher-ng/apt-cacher.log").stdout
    assert f"|{address}|" in log, f"mgmt1's proxy never served {address}"


@pytest.mark.parametrize("name", MANAGED_HOSTS)
def test_a_host_has_no_way_out_but_through_fw1(
    room: room_mod.Room, host: Callable[[str], Any], name: str
) -> None:
    # ip route get only consults the routing table: no packet is sent.
    lookup = host(name).run("ip route get 203.0.113.1")
    route = lookup.stdout
    router = room.router_in(room.host(name).zone)
    if name == "fw1":
        assert lookup.rc != 0 and "unreachable" in lookup.stderr, f"fw1 has a way out: {route}"
    else:
        assert f"via {router} " in route, f"{name} routes outside the room not via fw1: {route}"


@pytest.mark.parametrize("package", NEVER_UPGRADED)
def test_security_updates_never_touch_the_rooms_services(
    host: Callable[[str], Any], package: str
) -> None:
    check = (
        "python3 -c 'import re, sys, apt_pkg; apt_pkg.init_config(); "
        'patterns = apt_pkg.config.value_list("Unattended-Upgrade::Package-Blacklist"); '
        "sys.exit(0 if any(re.match(p, sys.argv[1]) for p in patterns) else 1)' "
        f"{package}"
    )
    assert host("db1").run(check).rc == 0, f"{package} is not kept from automatic upgrades"


def test_security_updates_never_reboot(host: Callable[[str], Any]) -> None:
    config = host("app1").run("apt-config dump Unattended-Upgrade").stdout
    assert 'Unattended-Upgrade::Automatic-Reboot "false";' in config
    assert "Unattended-Upgrade::Origins-Pattern:: " in config
    origins = [line for line in config.splitlines() if "Origins-Pattern::" in line]
    assert origins and all("security" in line for line in origins), origins
