"""The voter register: PostgreSQL primary and synchronous standby, locked down (issue 3).

SQL runs where a client of the register runs: psql on app1 (or on whichever host a test names),
connecting over the room's network with the role's password from the vault. The password
reaches the remote psql through a passfile written from stdin, never on a command line.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from probes import SQL

from roomctl import converge as converge_mod
from roomctl import lab as lab_mod
from roomctl import register as register_mod
from roomctl import room as room_mod

STATE = lab_mod.STATE_DIR
CA = "/etc/roomctl/tls/ca.crt"
# Khmer text with subscript consonants (COENG), a combining vowel sign, a zero-width joiner and a
# zero-width non-joiner: stored and read back byte for byte.
KHMER = "សុខ ស្រីមុំ ព្រះ\u200dវិហារ ក\u200cខ"


@pytest.fixture(scope="module")
def drill_table(sql: SQL) -> str:
    """A table of the register made by the migration role from app1, as a release would."""
    code, out = sql(
        "app1",
        "db1",
        "SET ROLE register_owner; CREATE TABLE IF NOT EXISTS register.drill"
        " (id bigserial PRIMARY KEY, token text NOT NULL, note text,"
        " at timestamptz NOT NULL DEFAULT now())",
        role="register_migrate",
    )
    assert code == 0, out
    return "register.drill"


def _insert(sql: SQL, target: str, token: str, timeout: float = 30) -> tuple[int, str]:
    return sql(
        "app1",
        target,
        f"INSERT INTO register.drill (token) VALUES ('{token}') RETURNING id",
        timeout=timeout,
    )


def _count(sql: SQL, target: str, token: str, role: str = "register_app") -> int:
    code, out = sql(
        "app1", target, f"SELECT count(*) FROM register.drill WHERE token = '{token}'", role=role
    )
    assert code == 0, out
    return int(out)


def _roomctl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(room_mod.REPO / "roomctl"), *args], capture_output=True, text=True, check=False
    )
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


# The cluster -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["db1", "db2"])
def test_the_server_parsed_every_access_rule_without_error(
    register: register_mod.Register, name: str
) -> None:
    out = register.run(
        name,
        "runuser -u postgres -- psql -XAtq -c"
        " 'select count(*), count(*) filter (where error is not null) from pg_hba_file_rules'",
    ).stdout.strip()
    rules, errors = (int(x) for x in out.split("|"))
    assert rules > 5
    assert errors == 0


def test_the_cluster_has_data_checksums_and_the_register_a_unicode_locale(
    register: register_mod.Register,
) -> None:
    out = register.run(
        "db1",
        "runuser -u postgres -- psql -XAtq -c \"select current_setting('data_checksums'),"
        " pg_encoding_to_char(encoding), datlocprovider, daticulocale, datctype"
        " from pg_database where datname = 'register'\"",
    ).stdout.strip()
    assert out == "on|UTF8|i|km-KH|C.UTF-8"


# Who may connect -------------------------------------------------------------------------


def test_the_app_role_connects_from_app1_over_tls_and_writes(sql: SQL, drill_table: str) -> None:
    token = uuid.uuid4().hex
    code, out = _insert(sql, "db1", token)
    assert code == 0, out
    code, out = sql(
        "app1", "db1", "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
    )
    assert code == 0 and out.startswith("t|TLSv1."), out
    assert _count(sql, "db1", token) == 1


@pytest.mark.parametrize("source", ["db2", "bk1"])
def test_the_app_role_is_refused_from_other_room_hosts(sql: SQL, source: str) -> None:
    code, out = sql(source, "db1", "SELECT 1")
    assert code != 0
    assert "pg_hba.conf rejects connection" in out, out


def test_the_register_is_unreachable_from_the_office(room: room_mod.Room) -> None:
    probe = (
        "import socket,sys\n"
        "try:\n socket.create_connection((sys.argv[1], 5432), 3)\n"
        "except OSError: sys.exit(1)\n"
    )
    result = subprocess.run(
        [
            "podman",
            "exec",
            lab_mod.container("client1"),
            "python3",
            "-c",
            probe,
            room.host("db1").address,
        ],
        capture_output=True,
        check=False,
    )
    assert result.returncode == 1


def test_without_tls_the_app_role_is_refused(sql: SQL) -> None:
    code, out = sql("app1", "db1", "SELECT 1", sslmode="disable")
    assert code != 0
    assert "no encryption" in out, out


def test_with_a_wrong_password_the_app_role_is_refused(sql: SQL) -> None:
    code, out = sql("app1", "db1", "SELECT 1", password="not-the-password-at-all")
    assert code != 0
    assert "password authentication failed" in out, out


def test_the_migration_role_is_refused_from_the_standby_host(sql: SQL) -> None:
    code, out = sql("db2", "db1", "SELECT 1", role="register_migrate")
    assert code != 0 and "pg_hba.conf rejects connection" in out, out


def test_the_app_role_cannot_change_the_schema(sql: SQL, drill_table: str) -> None:
    code, out = sql("app1", "db1", "CREATE TABLE register.intruder (x int)")
    assert code != 0 and "permission denied" in out, out


# Replication -----------------------------------------------------------------------------


def test_a_committed_row_is_readable_on_the_standby_within_a_second(
    sql: SQL, drill_table: str
) -> None:
    token = uuid.uuid4().hex
    code, out = _insert(sql, "db1", token)
    assert code == 0, out
    committed = time.monotonic()
    seen = None
    while time.monotonic() - committed < 5:
        if _count(sql, "db2", token, role="register_read") == 1:
            seen = time.monotonic() - committed
            break
    # Each probe is a fresh TLS connection from app1 (tens of ms), so this bounds the lag above.
    assert seen is not None and seen < 1.0, seen


def test_a_write_on_the_standby_is_refused(sql: SQL, drill_table: str) -> None:
    code, out = _insert(sql, "db2", uuid.uuid4().hex)
    assert code != 0 and "read-only transaction" in out, out


def test_the_primary_names_its_standbys_and_the_standby_is_synchronous(
    register: register_mod.Register,
) -> None:
    status = register.host_status("db1")
    assert status["role"] == "primary"
    assert status["synchronous_standby_names"].startswith("ANY 1 (")
    for name in ("db2", "bk1", "bk2"):
        assert f'"{name}"' in status["synchronous_standby_names"]
    replicas = {r["name"]: r for r in status["replicas"]}
    assert replicas["db2"]["state"] == "streaming"
    assert replicas["db2"]["sync_state"] in ("sync", "quorum")


def _start_insert(sql: SQL, token: str) -> Any:
    """An insert on db1 from app1 left running (it may wait for the standby)."""
    return sql.run(
        "app1",
        "db1",
        f"INSERT INTO register.drill (token) VALUES ('{token}')",
        timeout=None,
        asynchronous=True,
    )


def _insert_left_waiting(sql: SQL, register: register_mod.Register) -> tuple[str, Any]:
    """An insert on db1 that is seen waiting for the (stopped) standby."""
    token = uuid.uuid4().hex
    promise = _start_insert(sql, token)
    time.sleep(3)
    assert _waiting_for_sync(register) == 1, "the commit did not wait for the standby"
    return token, promise


def _waiting_for_sync(register: register_mod.Register) -> int:
    out = register.run(
        "db1",
        "runuser -u postgres -- psql -XAtq -c"
        " \"select count(*) from pg_stat_activity where wait_event = 'SyncRep'\"",
    ).stdout.strip()
    return int(out)


@pytest.fixture
def standby_stopped(register: register_mod.Register) -> Iterator[None]:
    """PostgreSQL on db2 stopped for one test, started again afterwards."""
    register.run("db2", "systemctl stop postgresql@15-main")
    yield
    register.run("db2", "systemctl start postgresql@15-main")
    register.wait_streaming("db1", "db2")
    if not register.host_status("db1")["synchronous_standby_names"]:
        register.helper("db1", "sync")


@pytest.mark.destructive
def test_with_the_standby_stopped_a_write_waits_until_it_returns(
    sql: SQL, register: register_mod.Register, drill_table: str, standby_stopped: None
) -> None:
    token, promise = _insert_left_waiting(sql, register)
    register.run("db2", "systemctl start postgresql@15-main")
    result = promise.join()
    assert result.exited == 0, result.stdout
    assert _count(sql, "db1", token) == 1


@pytest.mark.destructive
def test_with_the_standby_stopped_async_lets_a_waiting_write_complete(
    sql: SQL, register: register_mod.Register, drill_table: str, standby_stopped: None
) -> None:
    token, promise = _insert_left_waiting(sql, register)
    result = _roomctl("db", "async")
    assert "no longer wait" in result.stdout
    assert promise.join().exited == 0
    assert _count(sql, "db1", token) == 1
    refused = _roomctl("db", "sync", check=False)
    assert refused.returncode != 0 and "no standby streams" in refused.stdout + refused.stderr
    log = register.run("db1", "journalctl -t roomctl-register --since -5min -o cat").stdout
    assert "ASYNCHRONOUS" in log


# Text ------------------------------------------------------------------------------------


def test_khmer_text_round_trips_byte_for_byte(sql: SQL, drill_table: str) -> None:
    token = uuid.uuid4().hex
    statement = (
        f"INSERT INTO register.drill (token, note) VALUES ('{token}', '{KHMER}');\n"
        f"SELECT encode(convert_to(note, 'UTF8'), 'hex') FROM register.drill"
        f" WHERE token = '{token}';\n"
    ).encode()
    code, out = sql("app1", "db1", "", stdin_sql=statement)
    assert code == 0, out
    assert bytes.fromhex(out.splitlines()[-1]) == KHMER.encode()


def test_invalid_utf8_is_refused_and_nothing_is_stored(sql: SQL, drill_table: str) -> None:
    token = uuid.uuid4().hex
    statement = (
        f"INSERT INTO register.drill (token, note) VALUES ('{token}', 'ab".encode()
        + b"\xff\xfe"
        + b"');\n"
    )
    code, out = sql("app1", "db1", "", stdin_sql=statement)
    assert code != 0
    assert "invalid byte sequence" in out, out
    assert _count(sql, "db1", token) == 0


# Switchover and failover -----------------------------------------------------------------


@pytest.mark.destructive
def test_switchover_and_back_loses_no_committed_row(
    sql: SQL, register: register_mod.Register, drill_table: str
) -> None:
    tokens = [uuid.uuid4().hex for _ in range(20)]
    for token in tokens[:10]:
        assert _insert(sql, "db1", token)[0] == 0
    there = _roomctl("db", "switchover", "--to", "db2")
    assert "register read only" in there.stdout, there.stdout
    assert register.host_status("db2")["role"] == "primary"
    assert register.record()["primary"] == "db2"
    for token in tokens[10:]:
        assert _insert(sql, "db2", token)[0] == 0
    back = _roomctl("db", "switchover", "--to", "db1")
    assert register.host_status("db1")["role"] == "primary"
    assert register.host_status("db2")["role"] == "standby"
    assert register.record()["primary"] == "db1"
    assert "register read only" in back.stdout, back.stdout
    for token in tokens:
        assert _count(sql, "db1", token) == 1


@pytest.mark.destructive
def test_failover_fences_the_old_primary_which_rejoins_on_command(
    sql: SQL, register: register_mod.Register, room: room_mod.Room, drill_table: str
) -> None:
    before = uuid.uuid4().hex
    assert _insert(sql, "db1", before)[0] == 0
    subprocess.run(["podman", "stop", "-t", "10", lab_mod.container("db1")], check=True)
    try:
        failover = _roomctl("db", "failover", "--to", "db2")
        assert "register read only" in failover.stdout
        after = uuid.uuid4().hex
        assert _insert(sql, "db2", after)[0] == 0, "db2 takes no writes after the failover"
        assert _count(sql, "db2", before) == 1

        # db1 comes back: its guard sees db2 on a later timeline and keeps it from taking writes.
        subprocess.run(["podman", "start", lab_mod.container("db1")], check=True)
        lab_mod.up()
        deadline = time.monotonic() + 60
        while register.host_status("db1").get("role") != "fenced":
            assert time.monotonic() < deadline, register.host_status("db1")
            time.sleep(1)
        code, out = _insert(sql, "db1", uuid.uuid4().hex)
        assert code != 0 and "read-only" in out, out
        # A fenced host follows nobody without the rewind that rejoin does.
        follow = register.run("db1", f"{register_mod.HELPER} follow db2")
        assert follow.exited != 0 and "is fenced" in follow.stderr, follow.stderr

        # A converge whose inventory still names db1 stops and changes nothing.
        refused = converge_mod.converge(
            "databases", inventory=room_mod.LAB_INVENTORY, summary=False
        )
        assert not refused.ok
        # Also when the run is limited to the standby (the record is read through mgmt1).
        limited = converge_mod.converge(
            "databases", inventory=room_mod.LAB_INVENTORY, limit="db2", summary=False
        )
        assert not limited.ok
        assert register.record()["primary"] == "db2"
        assert register.host_status("db2")["role"] == "primary"

        rejoin = _roomctl("db", "rejoin", "db1")
        assert "rewound" in rejoin.stdout
        assert register.host_status("db1")["role"] == "standby"
        assert _count(sql, "db2", after) == 1
    finally:
        # Back to the inventory's room: db1 primary, db2 its synchronous standby.
        status = register.host_status("db1")
        if status.get("role") == "fenced":
            _roomctl("db", "rejoin", "db1", check=False)
        if register.record().get("primary") != "db1":
            _roomctl("db", "switchover", "--to", "db1")
    assert register.host_status("db1")["role"] == "primary"
    assert _count(sql, "db1", after) == 1
    again = converge_mod.converge("databases", inventory=room_mod.LAB_INVENTORY, summary=False)
    assert again.ok
    assert register.host_status("db1")["role"] == "primary"
    assert register.host_status("db2")["role"] == "standby"


def test_the_primary_is_never_rewound(register: register_mod.Register) -> None:
    refused = _roomctl("db", "rejoin", "db1", check=False)
    assert refused.returncode != 0
    assert "recorded primary" in refused.stdout + refused.stderr
    # roomctl-register itself refuses too, whatever a runbook or a hand asks of it.
    result = register.run("db1", f"{register_mod.HELPER} rejoin db2")
    assert result.exited != 0 and "runs as a primary" in result.stderr, result.stderr
    assert register.host_status("db1")["role"] == "primary"


def test_connections_schema_and_role_changes_reach_the_journal(
    sql: SQL, register: register_mod.Register, drill_table: str
) -> None:
    marker = uuid.uuid4().hex
    code, out = sql(
        "app1",
        "db1",
        f"SET ROLE register_owner; COMMENT ON TABLE register.drill IS 'audit {marker}'",
        role="register_migrate",
    )
    assert code == 0, out
    register.run(
        "db1",
        "runuser -u postgres -- psql -XAtq -c 'ALTER ROLE register_read CONNECTION LIMIT -1'",
    )
    deadline = time.monotonic() + 10
    while True:
        log = register.run("db1", "journalctl -t postgresql --since -2min -o cat").stdout
        found = {
            "connection": "connection authorized: user=register_migrate" in log,
            "schema change": "AUDIT: SESSION" in log and marker in log,
            "role change": "ALTER ROLE register_read" in log,
        }
        if all(found.values()) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert all(found.values()), found


@pytest.mark.destructive
def test_a_primary_that_starts_alone_is_held_read_only_until_resumed(
    sql: SQL, register: register_mod.Register, drill_table: str
) -> None:
    """No peer answers at start: the register may have moved, so the guard takes no chance."""
    before = uuid.uuid4().hex
    assert _insert(sql, "db1", before)[0] == 0
    register.run("db2", "systemctl stop postgresql@15-main")
    try:
        register.run("db1", "systemctl restart postgresql@15-main", timeout=240)
        assert register.host_status("db1")["role"] == "fenced"
        code, out = _insert(sql, "db1", uuid.uuid4().hex)
        assert code != 0 and "read-only" in out, out
        log = register.run("db1", "journalctl -t roomctl-register --since -5min -o cat").stdout
        assert "roomctl db resume db1" in log
        resumed = _roomctl("db", "resume", "db1")
        assert "takes writes again" in resumed.stdout
        register.helper("db1", "async")
        assert _insert(sql, "db1", uuid.uuid4().hex)[0] == 0
    finally:
        register.run("db2", "systemctl start postgresql@15-main")
    register.wait_streaming("db1", "db2")
    register.helper("db1", "sync")
    assert _count(sql, "db1", before) == 1
    assert register.host_status("db2")["role"] == "standby"
