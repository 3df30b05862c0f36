"""The firewall: real connection attempts from a host in every zone, against the flow policy.

A connection counts as reached when the target answers (accepts, or refuses because nothing
listens there): the packet got through every firewall on the way. It counts as blocked when it
times out or the sender's own firewall refuses to send it.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import ROOM_HOSTS
from probes import wait_for

from roomctl import converge as converge_mod
from roomctl import lab as lab_mod
from roomctl import room as room_mod
from roomctl.flows import Policy

PROBE = r"""
import concurrent.futures, json, socket, sys

def probe(target):
    address, port = target.rsplit(":", 1)
    connection = socket.socket()
    connection.settimeout(2.5)
    try:
        connection.connect((address, int(port)))
        return target, "open"
    except ConnectionRefusedError:
        return target, "refused"
    except OSError as error:
        return target, type(error).__name__
    finally:
        connection.close()

with concurrent.futures.ThreadPoolExecutor(64) as pool:
    print(json.dumps(dict(pool.map(probe, sys.argv[1:]))))
"""
REACHED = ("open", "refused")
PORTS = [22, 80, 443, 3142, 3493, 5432, 9100, 19532]
SOURCES = ["mgmt1", "db1", "app1", "bk1", "bk2", "client1"]

# What the issue and the reference room name, written out by hand rather than read from the
# policy, so that a policy or compiler mistake cannot hide here: (source, target, port).
MUST_BE_BLOCKED = [
    ("client1", "db1", 5432),
    *[("client1", name, 22) for name in ROOM_HOSTS],
    ("app1", "bk1", 22),
    ("bk2", "db1", 22),
    ("db1", "app1", 443),
    ("db1", "app1", 22),
    *[
        (source, target, 22)
        for source in ("db1", "app1", "bk1", "bk2")
        for target in ("app1", "mgmt1", "fw1")
        if source != target
    ],
    ("app1", "db1", 22),
    ("bk1", "bk2", 22),
]
MUST_BE_REACHED = [
    ("client1", "app1", 443),
    ("client1", "app1", 80),
    ("app1", "db1", 5432),
    ("app1", "db2", 5432),
    ("bk1", "db1", 5432),
    ("bk2", "db2", 5432),
    ("db1", "bk1", 22),
    ("db1", "bk2", 22),
    *[("mgmt1", name, 22) for name in ROOM_HOSTS if name != "mgmt1"],
]


@pytest.fixture(scope="module")
def policy(room: room_mod.Room) -> Policy:
    return Policy(room.groups, room.hostvars)


@pytest.fixture(scope="module")
def matrix(
    room: room_mod.Room,
    host: Callable[[str], Any],
    podman_host: Callable[[str], Any],
) -> dict[tuple[str, str, int], str]:
    """Every source tries every port of every room host; what happened to each attempt."""
    found: dict[tuple[str, str, int], str] = {}
    targets = list(ROOM_HOSTS)
    for source in SOURCES:
        session = podman_host(source) if source == "client1" else host(source)
        attempts = [
            f"{room.host(target).address}:{port}"
            for target in targets
            for port in PORTS
            if target != source
        ]
        command = f"python3 -c {shlex.quote(PROBE)} {' '.join(attempts)}"
        result = session.run(command)
        assert result.rc == 0, result.stderr
        outcome = json.loads(result.stdout)
        for target in targets:
            for port in PORTS:
                key = f"{room.host(target).address}:{port}"
                if key in outcome:
                    found[(source, target, port)] = outcome[key]
    return found


@pytest.mark.parametrize(("source", "target", "port"), MUST_BE_BLOCKED)
def test_a_connection_outside_the_policy_is_blocked(
    matrix: dict[tuple[str, str, int], str], source: str, target: str, port: int
) -> None:
    assert matrix[(source, target, port)] not in REACHED


@pytest.mark.parametrize(("source", "target", "port"), MUST_BE_REACHED)
def test_a_connection_the_room_needs_gets_through(
    matrix: dict[tuple[str, str, int], str], source: str, target: str, port: int
) -> None:
    assert matrix[(source, target, port)] in REACHED


@pytest.mark.parametrize("source", SOURCES)
def test_every_attempt_matches_the_policy(
    policy: Policy, matrix: dict[tuple[str, str, int], str], source: str
) -> None:
    wrong = {
        f"{target}:{port}": outcome
        for (from_host, target, port), outcome in matrix.items()
        if from_host == source and (outcome in REACHED) != policy.allowed(source, target, port)
    }
    assert not wrong, f"from {source}, outcomes against the policy: {wrong}"


@pytest.fixture
def stranger(room: room_mod.Room) -> Iterator[str]:
    """A host in no inventory, plugged straight into the servers zone (fw1 bypassed)."""
    name = f"stranger-{uuid.uuid4().hex[:6]}"
    address = room.zones["servers"]["cidr"].rsplit(".", 1)[0] + ".99"
    lab_mod.start_stranger(name, "servers", address)
    yield name
    lab_mod.remove_stranger(name)


@pytest.mark.destructive
def test_host_rules_hold_when_fw1_is_bypassed(
    room: room_mod.Room, podman_host: Callable[[str], Any], stranger: str
) -> None:
    session = podman_host(stranger)
    db1 = room.host("db1").address
    assert session.run(f"ping -c 1 -W 2 {db1}").rc == 0, "no path to db1 at all"
    attempts = " ".join(f"{db1}:{port}" for port in PORTS)
    outcome = json.loads(session.run(f"python3 -c {shlex.quote(PROBE)} {attempts}").stdout)
    reached = {target: state for target, state in outcome.items() if state in REACHED}
    assert not reached, f"a host in no flow reached db1 directly: {reached}"


@pytest.mark.parametrize("name", ROOM_HOSTS)
def test_every_rule_counts_its_packets(host: Callable[[str], Any], name: str) -> None:
    ruleset = json.loads(host(name).run_expect([0], "nft --json list ruleset").stdout)
    rules = [item["rule"] for item in ruleset["nftables"] if "rule" in item]
    uncounted = [rule for rule in rules if not any("counter" in expr for expr in rule["expr"])]
    assert rules and not uncounted, f"{len(uncounted)} rules without a counter: {uncounted[:2]}"


def test_a_dropped_connection_is_logged_and_reaches_mgmt1(
    room: room_mod.Room, host: Callable[[str], Any], podman_host: Callable[[str], Any]
) -> None:
    port = 40000 + uuid.uuid4().int % 20000
    client = room.host("client1").address
    podman_host("client1").run(
        f"python3 -c {shlex.quote(PROBE)} {room.host('app1').address}:{port}"
    )
    fw1 = room.host("fw1").address
    collected = f"/var/log/journal/remote/remote-{fw1}.journal"
    mgmt1 = host("mgmt1")
    wanted = f"DPT={port}"
    assert wait_for(
        lambda: wanted in mgmt1.run(f"journalctl --file {collected} -g roomctl-drop -n 200").stdout,
        30,
    ), f"no logged drop of {client} to port {port} from fw1 reached mgmt1"


def _live_ruleset(host: Callable[[str], Any], name: str) -> str:
    return str(host(name).run_expect([0], "nft --stateless list ruleset").stdout)


@pytest.mark.destructive
def test_a_broken_ruleset_is_refused_and_the_live_one_stays(
    host: Callable[[str], Any], capfd: pytest.CaptureFixture[str]
) -> None:
    before = _live_ruleset(host, "app1")
    result = converge_mod.converge(
        "site",
        inventory=room_mod.LAB_INVENTORY,
        limit="app1",
        summary=False,
        extra_vars={"firewall_extra_input_rules": ["tcp dport 99999 counter drop"]},
    )
    output = capfd.readouterr().out
    assert not result.ok
    assert "failed to validate" in output and "Error:" in output, "nft's error was not shown"
    assert _live_ruleset(host, "app1") == before


@pytest.fixture
def locked_out_then_restored(host: Callable[[str], Any], room: room_mod.Room) -> Iterator[Any]:
    """Converge app1 with a rule that drops new SSH from mgmt1; afterwards converge it back."""
    mgmt1 = room.host("mgmt1").address
    result = converge_mod.converge(
        "site",
        inventory=room_mod.LAB_INVENTORY,
        limit="app1",
        summary=False,
        extra_vars={"firewall_extra_input_rules": [f"ip saddr {mgmt1} tcp dport 22 counter drop"]},
    )
    yield result
    converge_mod.converge("site", inventory=room_mod.LAB_INVENTORY, limit="app1", summary=False)


@pytest.mark.destructive
def test_a_lockout_is_rolled_back_and_ssh_works_again(
    locked_out_then_restored: converge_mod.Result, host: Callable[[str], Any], room: room_mod.Room
) -> None:
    assert not locked_out_then_restored.ok, "a ruleset that locks the control node out was kept"
    live = _live_ruleset(host, "app1")
    assert f"ip saddr {room.host('mgmt1').address} tcp dport 22 counter drop" not in live
    fresh = subprocess.run(
        [
            "ssh",
            "-F",
            str(lab_mod.STATE_DIR / "ssh_config"),
            "-o",
            "ControlMaster=no",
            "-o",
            "ControlPath=none",
            "-o",
            "BatchMode=yes",
            "app1",
            "true",
        ],
        check=False,
        timeout=60,
    )
    assert fresh.returncode == 0, "a fresh SSH connection to app1 fails after the rollback"
    log = host("app1").run("journalctl -t roomctl-firewall -n 20 --no-pager").stdout
    assert "ROLLED BACK" in log, log
