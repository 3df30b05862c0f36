"""Preflight stops a converge on a broken inventory, naming the problem and its fix, before Ansible
starts. Each case breaks one thing in an otherwise sound copy of the example production room.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from roomctl import converge

Breaker = Callable[[Path], None]

HOSTS = Path("hosts.yml")
SETTINGS = Path("group_vars") / "all" / "room.yml"
POLICY = Path("group_vars") / "all" / "policy.yml"
VAULT = Path("group_vars") / "all" / "vault.yml"


def _edit(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Rewrite a YAML file after changing its data (comments are lost; the copy is a test's)."""
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _group(data: dict[str, Any], name: str) -> dict[str, Any]:
    """A group's entry in hosts.yml, wherever it sits in the tree."""
    pending = [data]
    while pending:
        groups = pending.pop()
        for group, spec in groups.items():
            if group == name:
                return spec
            pending.append((spec or {}).get("children") or {})
    raise KeyError(name)


def _host(data: dict[str, Any], name: str) -> dict[str, Any]:
    """The entry of hosts.yml that sets a host's variables."""
    pending = [data]
    while pending:
        groups = pending.pop()
        for spec in groups.values():
            found = ((spec or {}).get("hosts") or {}).get(name)
            if found:
                return found
            pending.append((spec or {}).get("children") or {})
    raise KeyError(name)


def _without_setting(name: str) -> Breaker:
    def breaker(inventory: Path) -> None:
        _edit(inventory / SETTINGS, lambda data: data.pop(name))

    return breaker


def _with_host_vars(host: str, **values: Any) -> Breaker:
    def breaker(inventory: Path) -> None:
        _edit(inventory / HOSTS, lambda data: _host(data, host).update(values))

    return breaker


def _without_host_var(host: str, name: str) -> Breaker:
    def breaker(inventory: Path) -> None:
        _edit(inventory / HOSTS, lambda data: _host(data, host).pop(name))

    return breaker


def _with_flow(**flow: Any) -> Breaker:
    def breaker(inventory: Path) -> None:
        new = {"name": "added-by-test", "why": "A flow the test adds"}
        _edit(inventory / POLICY, lambda data: data["room_flows"].append(new | flow))

    return breaker


def _with_file(name: str, text: Callable[[], str]) -> Breaker:
    def breaker(inventory: Path) -> None:
        path = inventory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text())

    return breaker


def _plain_private_key() -> str:
    """A host variable holding a freshly made private key, in PEM, unencrypted."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    return "app_tls_key: |\n" + "".join(f"  {line}\n" for line in pem.splitlines())


def _without_vault(inventory: Path) -> None:
    (inventory / VAULT).unlink()


def _with_second_primary(inventory: Path) -> None:
    extra = {"db3": {"ansible_host": "198.51.100.13", "room_zone": "servers"}}
    _edit(inventory / HOSTS, lambda data: _group(data, "db_primary")["hosts"].update(extra))


def _without_group(name: str) -> Breaker:
    def breaker(inventory: Path) -> None:
        _edit(inventory / HOSTS, lambda data: _group(data, "room")["children"].pop(name))

    return breaker


def _without_router_address(zone: str) -> Breaker:
    def breaker(inventory: Path) -> None:
        _edit(inventory / HOSTS, lambda data: _host(data, "fw1")["room_router_addresses"].pop(zone))

    return breaker


def _with_placeholder_admin_key(inventory: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        data["room_admins"][0]["ssh_keys"] = ["ssh-ed25519 REPLACE-WITH-A-KEY ops@workstation"]

    _edit(inventory / "group_vars" / "all" / "room.yml", change)


def _with_setting(name: str, value: Any) -> Breaker:
    def breaker(inventory: Path) -> None:
        _edit(inventory / SETTINGS, lambda data: data.update({name: value}))

    return breaker


def _with_databases_outside_room(inventory: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        databases = _group(data, "room")["children"].pop("databases")
        data["all"]["children"]["databases"] = databases
        for name in ("db1", "db2"):
            _group(data, "ups_powered")["hosts"].pop(name)

    _edit(inventory / HOSTS, change)


BROKEN = [
    pytest.param(
        _with_flow(
            name='x"; counter accept comment "y',
            **{"from": ["zone:office"]},
            to=["group:app_servers"],
            services=["https"],
        ),
        "is not a plain name",
        "name flows with lower-case letters, digits and hyphens only",
        id="flow-name-injection",
    ),
    pytest.param(
        _with_databases_outside_room,
        "group databases has hosts outside group room (db1, db2)",
        "keep databases under room's children in hosts.yml",
        id="group-outside-room",
    ),
    pytest.param(
        _with_setting(
            "room_external_networks",
            {"package_mirrors": ["0.0.0.0/0"], "oncall_relay": [], "time_sources": []},
        ),
        "room_external_networks.package_mirrors lists 0.0.0.0/0, which is far too wide",
        "list the outside service's own networks only",
        id="external-everything",
    ),
    pytest.param(
        _with_file("host_vars/fw1.yml", lambda: "room_flows: []\n"),
        "room_flows is not the same on every host",
        "set room_flows once, in group_vars/all",
        id="room-wide-setting-overridden",
    ),
    pytest.param(
        _with_file("host_vars/db1.yml", lambda: "firewall_extra_input_rules: ['counter accept']\n"),
        "firewall_extra_input_rules of db1 accepts traffic",
        "extra rules may only count or drop",
        id="extra-rule-accepts",
    ),
    pytest.param(
        _with_file("host_vars/db2.yml", lambda: "firewall_filter_output: false\n"),
        "firewall_filter_output is turned off on db2",
        "the register and backup hosts always filter outgoing traffic",
        id="egress-filter-off",
    ),
    pytest.param(
        _with_setting("room_breakglass_from", "198.51.100.20"),
        "room_breakglass_from is '198.51.100.20', not one address in the mgmt zone",
        "set room_breakglass_from to the address of the control node's console",
        id="breakglass-from-outside-mgmt",
    ),
    pytest.param(
        _with_host_vars("db2", ansible_host="198.51.100.11"),
        "hosts db1, db2 share the address 198.51.100.11",
        "give every host an address of its own",
        id="shared-address",
    ),
    pytest.param(
        _with_file("group_vars/all/extra.ini", lambda: "db_pass=hunter2\n"),
        "extra.ini: db_pass is a secret in plain text",
        "move it into an ansible-vault encrypted vault.yml",
        id="secret-in-ini",
    ),
    pytest.param(
        _with_file("group_vars/all/nested.yml", lambda: "db_credentials:\n  admin: hunter2\n"),
        "db_credentials.admin is a secret in plain text",
        "encrypt it",
        id="nested-secret",
    ),
    pytest.param(
        _with_placeholder_admin_key,
        "room_admins (ops) ssh_keys is not an SSH public key",
        "put the public key line (e.g. the content of id_ed25519.pub) in room_admins (ops)",
        id="admin-key-placeholder",
    ),
    pytest.param(
        _without_setting("room_zones"),
        "room_zones is not set",
        "set room_zones in group_vars/all/room.yml",
        id="room_zones-missing",
    ),
    pytest.param(
        _without_setting("room_admins"),
        "room_admins is not set",
        "set room_admins in group_vars/all/room.yml",
        id="room_admins-missing",
    ),
    pytest.param(
        _without_setting("room_time_mode"),
        "room_time_mode is not set",
        "set room_time_mode in group_vars/all/room.yml",
        id="room_time_mode-missing",
    ),
    pytest.param(
        _without_host_var("db2", "room_zone"),
        "host db2 is in no zone",
        "set room_zone for db2 in hosts.yml to one of: mgmt, office, offsite, servers",
        id="host-in-no-zone",
    ),
    pytest.param(
        _with_host_vars("db2", room_zone="dmz"),
        "host db2 is in zone 'dmz', which room_zones does not list",
        "set room_zone for db2 to one of: mgmt, office, offsite, servers, or add dmz",
        id="host-in-unknown-zone",
    ),
    pytest.param(
        _with_host_vars("app1", ansible_host="203.0.113.20"),
        "host app1 has address '203.0.113.20', outside its zone servers",
        "set ansible_host for app1 to an address in 198.51.100.0/24",
        id="address-outside-zone",
    ),
    pytest.param(
        _with_flow(**{"from": ["host:mgmt1"], "to": ["host:archive1"], "services": ["ssh"]}),
        "flow added-by-test names unknown host 'archive1' in 'to'",
        "or add archive1 to the inventory",
        id="flow-unknown-host",
    ),
    pytest.param(
        _with_flow(**{"from": ["group:mgmt"], "to": ["group:web_servers"], "services": ["ssh"]}),
        "flow added-by-test names unknown group 'web_servers' in 'to'",
        "or add web_servers to the inventory",
        id="flow-unknown-group",
    ),
    pytest.param(
        _with_flow(**{"from": ["zone:dmz"], "to": ["group:app_servers"], "services": ["https"]}),
        "flow added-by-test names unknown zone 'dmz' in 'from'",
        "or add dmz to the inventory",
        id="flow-unknown-zone",
    ),
    pytest.param(
        _with_flow(**{"from": ["group:app_servers"], "to": ["group:mgmt"], "services": ["redis"]}),
        "flow added-by-test names unknown service 'redis'",
        "add redis with its ports to room_services",
        id="flow-unknown-service",
    ),
    pytest.param(
        _with_file("group_vars/all/secrets.yml", lambda: "vault_db_password: hunter2\n"),
        "group_vars/all/secrets.yml: vault_db_password is a secret in plain text",
        "ansible-vault encrypt_string --name vault_db_password",
        id="secret-in-plain-text",
    ),
    pytest.param(
        _with_file("host_vars/app1.yml", _plain_private_key),
        "host_vars/app1.yml holds a private key in plain text",
        "move it into the encrypted vault: ansible-vault edit",
        id="private-key-in-plain-text",
    ),
    pytest.param(
        _without_vault,
        "vault_room_ca_key is not set",
        "roomctl vault-init INVENTORY --vault-password-file FILE",
        id="vault-missing",
    ),
    pytest.param(
        _with_second_primary,
        "group db_primary has 2 hosts (db1, db3)",
        "put exactly one host in db_primary",
        id="two-primaries",
    ),
    pytest.param(
        _without_group("ups_primary"),
        "group ups_primary (the host the UPS hangs off (NUT primary)) is missing",
        "add group ups_primary to hosts.yml",
        id="group-missing",
    ),
    pytest.param(
        _without_router_address("office"),
        "firewall fw1 has no address in zone office (203.0.113.0/25)",
        "set room_router_addresses.office for fw1 to its address in 203.0.113.0/25",
        id="firewall-not-in-zone",
    ),
]


def test_sound_copy_passes_preflight(sound_copy: Path, vault_password: Path) -> None:
    room = converge.preflight(sound_copy, vault_password)
    assert [host.name for host in room.hosts("room")] == [
        "fw1",
        "app1",
        "mgmt1",
        "db1",
        "db2",
        "bk1",
        "bk2",
    ]


@pytest.mark.parametrize(("breaker", "what", "fix"), BROKEN)
def test_preflight_names_the_problem_and_its_fix(
    sound_copy: Path, vault_password: Path, breaker: Breaker, what: str, fix: str
) -> None:
    breaker(sound_copy)
    with pytest.raises(converge.PreflightError) as raised:
        converge.preflight(sound_copy, vault_password)
    message = str(raised.value)
    assert what in message, message
    assert fix in message, message


@pytest.mark.parametrize("breaker", [pytest.param(case.values[0], id=case.id) for case in BROKEN])
def test_converge_starts_no_ansible_on_a_broken_inventory(
    sound_copy: Path, vault_password: Path, monkeypatch: pytest.MonkeyPatch, breaker: Breaker
) -> None:
    def refuse(**_: Any) -> None:
        raise AssertionError("converge started Ansible on a broken inventory")

    monkeypatch.setattr(converge, "_run", refuse)
    breaker(sound_copy)
    with pytest.raises(converge.PreflightError):
        converge.converge("site", inventory=sound_copy, vault_password_file=vault_password)
