"""The lab and the example production room describe the same room; only addresses and settings
differ. The lab's structure passes the inventory checks without its vault or its keys.
"""

from __future__ import annotations

import ipaddress
import itertools
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from roomctl import policy
from roomctl import room as room_mod

REPO = Path(__file__).resolve().parents[2]
LAB = REPO / "inventory" / "lab"
EXAMPLE = REPO / "inventory" / "production.example"
# Settings only the lab has: where `roomctl lab` keeps its keys and generated files.
LAB_ONLY_SETTINGS = {"lab_state_dir"}
DOCUMENTATION_NETWORKS = [
    ipaddress.ip_network(cidr) for cidr in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
]


def _group_tree(inventory: Path) -> dict[str, dict[str, list[str]]]:
    """Each group of hosts.yml with its child groups and the hosts listed directly under it."""
    tree: dict[str, dict[str, list[str]]] = {}

    def visit(name: str, spec: dict[str, Any] | None) -> None:
        entry = tree.setdefault(name, {"children": [], "hosts": []})
        children = (spec or {}).get("children") or {}
        entry["children"] += list(children)
        entry["hosts"] += list((spec or {}).get("hosts") or {})
        for child, child_spec in children.items():
            visit(child, child_spec)

    for name, spec in yaml.safe_load((inventory / "hosts.yml").read_text()).items():
        visit(name, spec)
    return tree


def _settings(inventory: Path) -> dict[str, Any]:
    return dict(yaml.safe_load((inventory / "group_vars" / "all" / "room.yml").read_text()))


def _example_addresses() -> list[str]:
    """Every address and network the example names: hosts, firewall, zones, external networks."""
    found = []
    for spec in yaml.safe_load((EXAMPLE / "hosts.yml").read_text()).values():
        found += _addresses_in(spec)
    settings = _settings(EXAMPLE)
    found += [zone["cidr"] for zone in settings["room_zones"].values()]
    found.append(settings["room_breakglass_from"])
    found += list(itertools.chain(*settings["room_external_networks"].values()))
    found += settings["room_time_upstream"]
    return [str(address) for address in found]


def _addresses_in(data: Any) -> list[str]:
    if isinstance(data, dict):
        found = []
        for key, value in data.items():
            if key == "ansible_host":
                found.append(value)
            elif key == "room_router_addresses":
                found += list(value.values())
            else:
                found += _addresses_in(value)
        return found
    return []


def test_both_rooms_have_the_same_groups() -> None:
    assert sorted(_group_tree(EXAMPLE)) == sorted(_group_tree(LAB))


def test_both_rooms_have_the_same_group_tree() -> None:
    def children(inventory: Path) -> dict[str, list[str]]:
        return {name: entry["children"] for name, entry in _group_tree(inventory).items()}

    assert children(EXAMPLE) == children(LAB)


def test_both_rooms_place_the_same_hosts_in_each_group() -> None:
    def hosts(inventory: Path) -> dict[str, list[str]]:
        return {name: entry["hosts"] for name, entry in _group_tree(inventory).items()}

    assert hosts(EXAMPLE) == hosts(LAB)


def test_both_rooms_have_a_byte_identical_flow_policy() -> None:
    policy_file = Path("group_vars") / "all" / "policy.yml"
    assert (EXAMPLE / policy_file).read_bytes() == (LAB / policy_file).read_bytes()


def test_both_rooms_set_the_same_settings_in_the_same_order() -> None:
    lab_keys = [key for key in _settings(LAB) if key not in LAB_ONLY_SETTINGS]
    assert list(_settings(EXAMPLE)) == lab_keys


def test_example_uses_documentation_addresses_only() -> None:
    outside = [
        address
        for address in _example_addresses()
        if not any(
            ipaddress.ip_network(address).subnet_of(network) for network in DOCUMENTATION_NETWORKS
        )
    ]
    assert outside == []


def test_example_zones_do_not_overlap() -> None:
    zones = {
        name: ipaddress.ip_network(zone["cidr"])
        for name, zone in _settings(EXAMPLE)["room_zones"].items()
    }
    overlapping = [
        (first, second)
        for first, second in itertools.combinations(sorted(zones), 2)
        if zones[first].overlaps(zones[second])
    ]
    assert overlapping == []


@pytest.mark.parametrize("name", ["hosts.yml", "group_vars/all/room.yml"])
def test_example_needs_nothing_outside_its_directory(name: str) -> None:
    text = (EXAMPLE / name).read_text()
    assert "lab_state_dir" not in text
    assert "lookup(" not in text


def test_example_ships_no_vault() -> None:
    vault = EXAMPLE / "group_vars" / "all" / "vault.yml"
    assert not vault.exists(), f"{vault} belongs to one room; remove it from the example"


@pytest.fixture
def lab_room(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> room_mod.Room:
    """The lab inventory as Ansible reads it, without the vault this machine made for it."""
    monkeypatch.setenv("ROOMCTL_LAB_STATE", str(tmp_path / "lab-state"))
    inventory = tmp_path / "lab"
    shutil.copytree(LAB, inventory, ignore=shutil.ignore_patterns("vault.yml"))
    return room_mod.load(inventory)


@pytest.mark.parametrize(
    "check",
    [
        pytest.param(lambda room: policy.check_groups(room.groups), id="groups"),
        pytest.param(lambda room: policy.check_zones(room.groups, room.hostvars), id="zones"),
        pytest.param(lambda room: policy.check_flows(room.groups, room.hostvars), id="flows"),
    ],
)
def test_lab_passes_the_structural_checks(
    lab_room: room_mod.Room, check: Callable[[room_mod.Room], list[policy.Problem]]
) -> None:
    assert check(lab_room) == []


def test_lab_sets_every_setting_but_its_vault(lab_room: room_mod.Room) -> None:
    hosts = [host.name for host in lab_room.hosts("room")]
    problems = policy.check_settings(lab_room.hostvars, hosts)
    assert {problem.what.split()[0] for problem in problems} == set(policy.VAULT_SETTINGS)
