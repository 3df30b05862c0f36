"""The flow policy compiled per host: what the lab inventory's policy allows, and what not."""

from __future__ import annotations

from pathlib import Path

import pytest

from roomctl import room as room_mod
from roomctl.flows import Policy


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Policy:
    inventory = tmp_path_factory.mktemp("lab")
    source = room_mod.LAB_INVENTORY
    for path in source.rglob("*.yml"):
        if path.name == "vault.yml":
            continue
        target = inventory / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text())
    room = room_mod.load(Path(inventory))
    return Policy(room.groups, room.hostvars)


@pytest.mark.parametrize(
    ("source", "target", "port", "protocol"),
    [
        ("client1", "app1", 443, "tcp"),
        ("client1", "app1", 80, "tcp"),
        ("app1", "db1", 5432, "tcp"),
        ("app1", "db2", 5432, "tcp"),
        ("db2", "db1", 5432, "tcp"),
        ("bk2", "db1", 5432, "tcp"),
        ("db1", "bk1", 22, "tcp"),
        ("db1", "bk2", 22, "tcp"),
        ("mgmt1", "fw1", 22, "tcp"),
        ("mgmt1", "bk2", 9100, "tcp"),
        ("db1", "mgmt1", 123, "udp"),
        ("bk2", "mgmt1", 3142, "tcp"),
        ("fw1", "mgmt1", 19532, "tcp"),
        ("app1", "mgmt1", 3493, "tcp"),
    ],
)
def test_the_policy_allows_the_rooms_flows(
    policy: Policy, source: str, target: str, port: int, protocol: str
) -> None:
    assert policy.allowed(source, target, port, protocol)


@pytest.mark.parametrize(
    ("source", "target", "port"),
    [
        ("client1", "db1", 5432),
        ("client1", "app1", 22),
        ("client1", "mgmt1", 22),
        ("app1", "bk1", 22),
        ("bk2", "db1", 22),
        ("db1", "app1", 443),
        ("db1", "app1", 22),
        ("app1", "db1", 22),
        ("bk1", "bk2", 22),
        ("bk2", "mgmt1", 3493),
        ("client1", "mgmt1", 3142),
    ],
)
def test_the_policy_allows_nothing_else(
    policy: Policy, source: str, target: str, port: int
) -> None:
    assert not policy.allowed(source, target, port)


def test_db1_takes_ssh_from_mgmt1_alone(policy: Policy) -> None:
    ssh = [rule for rule in policy.input_rules("db1") if 22 in rule.ports]
    assert [rule.sources for rule in ssh] == [("198.18.0.10",)]


def test_a_flow_to_an_empty_external_network_yields_no_rule(policy: Policy) -> None:
    flows = {rule.flow for rule in policy.forward_rules()}
    assert "package-upstream" not in flows and "clerks-to-app" in flows


def test_the_office_zone_reaches_app1_as_a_network(policy: Policy) -> None:
    rules = [rule for rule in policy.input_rules("app1") if rule.flow == "clerks-to-app"]
    assert rules and rules[0].sources == ("198.18.2.0/24",) and rules[0].ports == (80, 443)


def test_the_register_takes_the_app_role_from_app1_alone(policy: Policy) -> None:
    assert policy.flow_sources("app-to-register", "db1") == [policy.address("app1")]


def test_replication_sources_are_the_database_hosts(policy: Policy) -> None:
    assert policy.flow_sources("register-replication", "db2") == [
        policy.address("db1"),
        policy.address("db2"),
    ]


def test_a_host_outside_a_flows_destinations_gets_no_sources(policy: Policy) -> None:
    assert policy.flow_sources("app-to-register", "bk1") == []


def test_an_unknown_flow_name_is_an_error(policy: Policy) -> None:
    with pytest.raises(KeyError, match="no flow named"):
        policy.flow_sources("no-such-flow", "db1")
