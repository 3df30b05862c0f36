"""Who may log in, how, and with what rights: keys only, no root, sudo for administrators, and a
break-glass key accepted from one mgmt address only, every use logged."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import paramiko
import pytest
from conftest import ROOM_HOSTS
from probes import admin_key, breakglass_key, transport_from, wait_for

from roomctl import room as room_mod


@pytest.fixture
def ops_with_password(
    host: Callable[[str], Any], request: pytest.FixtureRequest
) -> Iterator[tuple[str, str]]:
    """Give the administrator a real password for the length of one test, then lock it again."""
    name = request.param
    password = uuid.uuid4().hex
    target = host(name)
    target.run_expect([0], f"echo 'ops:{password}' | chpasswd")
    yield name, password
    target.run_expect([0], "usermod --password '!' ops")


@pytest.mark.parametrize("ops_with_password", ROOM_HOSTS, indirect=True)
def test_password_login_is_refused(room: room_mod.Room, ops_with_password: tuple[str, str]) -> None:
    target, password = ops_with_password
    with (
        transport_from(room, "mgmt1", target) as transport,
        pytest.raises(paramiko.BadAuthenticationType) as refused,
    ):
        transport.auth_password("ops", password)
    assert refused.value.allowed_types == ["publickey"], (
        f"{target} offers {refused.value.allowed_types} after a right password; want publickey"
    )


@pytest.fixture
def root_with_admin_key(
    host: Callable[[str], Any], request: pytest.FixtureRequest
) -> Iterator[str]:
    """Authorise the administrator's key for root for one test, then take it away."""
    name = request.param
    target = host(name)
    public = f"{admin_key().get_name()} {admin_key().get_base64()}"
    target.run_expect(
        [0], f"install -d -m 0700 /root/.ssh && echo '{public}' > /root/.ssh/authorized_keys"
    )
    yield name
    target.run_expect([0], "rm -f /root/.ssh/authorized_keys")


@pytest.mark.parametrize("root_with_admin_key", ROOM_HOSTS, indirect=True)
def test_root_login_is_refused_even_with_an_authorised_key(
    room: room_mod.Room, root_with_admin_key: str
) -> None:
    with (
        transport_from(room, "mgmt1", root_with_admin_key) as transport,
        pytest.raises(paramiko.AuthenticationException),
    ):
        transport.auth_publickey("root", admin_key())


@pytest.mark.parametrize("name", ROOM_HOSTS)
def test_admin_key_logs_in_and_can_sudo(host: Callable[[str], Any], name: str) -> None:
    session = host(name)
    result = session.run("sudo -n id -u")
    assert result.rc == 0 and result.stdout.strip() == "0", result.stderr


@pytest.mark.parametrize("name", ROOM_HOSTS)
def test_breakglass_key_works_from_the_named_address_and_is_logged(
    room: room_mod.Room, host: Callable[[str], Any], name: str
) -> None:
    marker = uuid.uuid4().hex[:12]
    with transport_from(room, "mgmt1", name) as transport:
        transport.auth_publickey("breakglass", breakglass_key())
        channel = transport.open_session()
        channel.exec_command(f"sudo -n true && echo {marker}")
        output = channel.makefile().read().decode()
        assert channel.recv_exit_status() == 0
    assert marker in output
    target = host(name)
    assert wait_for(
        lambda: marker in target.run("journalctl -t breakglass --no-pager -n 20").stdout, 10
    ), f"no BREAK-GLASS entry naming {marker} in {name}'s journal"


def test_breakglass_key_is_refused_by_ssh_from_another_mgmt_address(room: room_mod.Room) -> None:
    # The lab machine stands in the mgmt zone, which the firewall lets reach mgmt1's SSH; the
    # key's own from= restriction must still refuse it.
    client = paramiko.Transport((room.host("mgmt1").address, 22))
    client.start_client(timeout=10)
    try:
        with pytest.raises(paramiko.AuthenticationException):
            client.auth_publickey("breakglass", breakglass_key())
    finally:
        client.close()


@pytest.mark.parametrize(("source", "name"), [("db2", "db1"), ("app1", "bk1"), ("db1", "fw1")])
def test_breakglass_key_gets_nowhere_from_another_room_host(
    room: room_mod.Room, source: str, name: str
) -> None:
    # The firewall drops the connection before SSH sees it (the channel cannot open); were it let
    # through, the key's from= restriction would refuse it. Either is an SSHException.
    with (
        pytest.raises(paramiko.SSHException),
        transport_from(room, source, name) as transport,
    ):
        transport.auth_publickey("breakglass", breakglass_key())
