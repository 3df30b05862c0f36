"""Probes of the lab tests: SSH sessions and transports that start on a chosen host, and waits."""

from __future__ import annotations

import contextlib
import shlex
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import paramiko

from roomctl import lab as lab_mod
from roomctl import register as register_mod
from roomctl import room as room_mod

STATE = lab_mod.STATE_DIR
CA = "/etc/roomctl/tls/ca.crt"
# A shell prologue that saves the first line of stdin as a passfile in $f (read stops there).
PASSFILE_FROM_STDIN = (
    'f=$(mktemp); trap \'rm -f "$f"\' EXIT; IFS= read -r line; printf "%s\\n" "$line" > "$f";'
)


def admin_key() -> paramiko.PKey:
    """The lab administrator's private key."""
    return paramiko.Ed25519Key.from_private_key_file(str(STATE / "ssh" / "ops_ed25519"))


def breakglass_key() -> paramiko.PKey:
    """The lab's sealed break-glass private key."""
    return paramiko.Ed25519Key.from_private_key_file(str(STATE / "ssh" / "breakglass_ed25519"))


@contextlib.contextmanager
def admin_client(address: str, sock: Any = None) -> Iterator[paramiko.SSHClient]:
    """An SSH session as the administrator to an address, optionally over a given socket."""
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # noqa: S507 - lab host keys
    client.connect(
        address,
        username="ops",
        pkey=admin_key(),
        sock=sock,
        allow_agent=False,
        look_for_keys=False,
        timeout=10,
    )
    try:
        yield client
    finally:
        client.close()


@contextlib.contextmanager
def transport_from(room: room_mod.Room, source: str, target: str) -> Iterator[paramiko.Transport]:
    """An unauthenticated SSH transport to target whose TCP connection starts on host source.

    The administrator logs in to mgmt1 (and from there to source, when source is another host);
    source's SSH server then opens the TCP connection to target, so target sees source's address.
    """
    jump_address = room.host("mgmt1").address
    target_address = room.host(target).address
    with admin_client(jump_address) as jump:
        jump_transport = jump.get_transport()
        assert jump_transport is not None
        if source == "mgmt1":
            channel = jump_transport.open_channel(
                "direct-tcpip", (target_address, 22), ("127.0.0.1", 0), timeout=15
            )
            with _started(channel) as transport:
                yield transport
            return
        hop = jump_transport.open_channel(
            "direct-tcpip", (room.host(source).address, 22), ("127.0.0.1", 0), timeout=15
        )
        with admin_client(room.host(source).address, sock=hop) as middle:
            middle_transport = middle.get_transport()
            assert middle_transport is not None
            channel = middle_transport.open_channel(
                "direct-tcpip", (target_address, 22), ("127.0.0.1", 0), timeout=15
            )
            with _started(channel) as transport:
                yield transport


@contextlib.contextmanager
def _started(channel: Any) -> Iterator[paramiko.Transport]:
    transport = paramiko.Transport(channel)
    transport.start_client(timeout=10)
    try:
        yield transport
    finally:
        transport.close()


def wait_for(check: Callable[[], bool], seconds: float, every: float = 1.0) -> bool:
    """Poll check until it holds or the time runs out; return whether it held."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return check()


def journal_of(host: Any, unit: str) -> str:
    """The last lines of a unit's journal on a host, for failure messages."""
    return str(host.run(f"journalctl -u {unit} -n 30 --no-pager").stdout)


def tcp_answers(address: str, port: int, timeout: float = 3.0) -> bool:
    """Whether a TCP connection from this machine to address:port is accepted."""
    with contextlib.suppress(OSError), socket.create_connection((address, port), timeout):
        return True
    return False


class SQL:
    """psql from a room host as a register role."""

    def __init__(self, reg: register_mod.Register, passwords: dict[str, str]) -> None:
        self.reg = reg
        self.passwords = passwords

    def __call__(
        self,
        source: str,
        target: str,
        sql: str,
        *,
        role: str = "register_app",
        password: str | None = None,
        sslmode: str = "verify-full",
        dbname: str = "register",
        stdin_sql: bytes | None = None,
        timeout: float = 30,
    ) -> tuple[int, str]:
        """Run sql on target from source; exit code and output (stderr included)."""
        result = self.run(
            source,
            target,
            sql,
            role=role,
            password=password,
            sslmode=sslmode,
            dbname=dbname,
            stdin_sql=stdin_sql,
            timeout=timeout,
        )
        return result.exited, str(result.stdout).strip()

    def run(
        self,
        source: str,
        target: str,
        sql: str,
        *,
        role: str = "register_app",
        password: str | None = None,
        sslmode: str = "verify-full",
        dbname: str = "register",
        stdin_sql: bytes | None = None,
        timeout: float | None = 30,
        asynchronous: bool = False,
    ) -> Any:
        """The Fabric result of psql on target from source (a promise when asynchronous)."""
        secret = self.passwords[role] if password is None else password
        conninfo = (
            f"host={target} user={role} dbname={dbname} sslmode={sslmode} sslrootcert={CA}"
            " connect_timeout=5"
        )
        # The passfile line comes first on stdin, then any SQL as bytes.
        script = (
            PASSFILE_FROM_STDIN
            + f' PGPASSFILE="$f" PGCLIENTENCODING=UTF8 psql -X -A -t -q -v ON_ERROR_STOP=1'
            f" {shlex.quote(conninfo)}"
            + ("" if stdin_sql is not None else f" -c {shlex.quote(sql)}")
            + " 2>&1"
        )
        data = f"*:*:*:*:{secret}\n".encode() + (stdin_sql or b"")
        return self.reg.connection(source).run(
            f"sh -c {shlex.quote(script)}",
            hide=True,
            warn=True,
            in_stream=register_mod.WholeInput(data),
            timeout=timeout,
            asynchronous=asynchronous,
            # Byte for byte both ways: latin-1 maps each byte to one character and back.
            encoding="latin-1",
        )
