"""Fixtures of the lab tests: a converged lab room, and ways into its hosts.

Tests reach room hosts the way an administrator does: over SSH as the administrator, jumping
through the control node. Probes that must start inside a zone run on a host of that zone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import testinfra
from probes import SQL

from roomctl import converge as converge_mod
from roomctl import lab as lab_mod
from roomctl import register as register_mod
from roomctl import room as room_mod
from roomctl import secrets as secrets_mod

STATE = lab_mod.STATE_DIR
# The provisioned hosts, from the lab inventory (read without templating, so no lab is needed).
ROOM_HOSTS = [
    h.name for h in room_mod.load(room_mod.LAB_INVENTORY, STATE / "vault-pass").hosts("room")
]
MANAGED_HOSTS = [name for name in ROOM_HOSTS if name != "mgmt1"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/lab needs the lab."""
    for item in items:
        if "tests/lab/" in str(item.fspath):
            item.add_marker(pytest.mark.lab)


@pytest.fixture(scope="session")
def room() -> room_mod.Room:
    """The lab room as its inventory describes it, with its vault (made here on a new clone)."""
    lab_mod.ensure_keys()
    secrets_mod.ensure_lab_vault(room_mod.LAB_INVENTORY, STATE / "vault-pass", lambda _: None)
    return room_mod.load(room_mod.LAB_INVENTORY, STATE / "vault-pass")


@pytest.fixture(scope="session")
def converged(room: room_mod.Room) -> converge_mod.Result:
    """The lab up and converged once for this test session (the first converge)."""
    lab_mod.up()
    result = converge_mod.converge("site", inventory=room_mod.LAB_INVENTORY, summary=False)
    assert result.ok, f"the first converge failed: {result.status} {result.stats}"
    return result


@pytest.fixture(scope="session")
def host(converged: converge_mod.Result) -> Callable[[str], Any]:
    """A testinfra host reached over SSH as the administrator (through mgmt1)."""
    cache: dict[str, Any] = {}

    def get(name: str) -> Any:
        if name not in cache:
            cache[name] = testinfra.get_host(
                f"ssh://{name}", ssh_config=str(STATE / "ssh_config"), sudo=True
            )
        return cache[name]

    return get


@pytest.fixture(scope="session")
def podman_host(converged: converge_mod.Result) -> Callable[[str], Any]:
    """A testinfra host reached through podman: for the test clients, which are not provisioned."""
    return lambda name: testinfra.get_host(f"podman://{lab_mod.container(name)}")


@pytest.fixture(scope="session")
def released(converged: converge_mod.Result, room: room_mod.Room) -> str:
    """The app released to app1 once for this test session (after the first converge); its id."""
    from roomctl import release as release_mod

    releaser = release_mod.Releaser(room, STATE / "ssh_config")
    try:
        return releaser.release()
    finally:
        releaser.close()


@pytest.fixture(scope="module")
def register(converged: Any, room: room_mod.Room) -> Iterator[register_mod.Register]:
    """The runbooks' own view of the register, over Fabric."""
    reg = register_mod.Register(room, STATE / "ssh_config")
    yield reg
    reg.close()


@pytest.fixture(scope="module")
def passwords(room: room_mod.Room) -> dict[str, str]:
    """The register's passwords from the lab vault."""
    loaded = room_mod.load(room_mod.LAB_INVENTORY, STATE / "vault-pass")
    return dict(loaded.hostvars["db1"]["vault_postgresql_passwords"])


@pytest.fixture(scope="module")
def sql(register: register_mod.Register, passwords: dict[str, str]) -> SQL:
    """psql from a room host as a register role."""
    return SQL(register, passwords)
