"""The room as an inventory describes it: hosts, zones, groups and the settings of each host.

The inventory is read with Ansible's own loader, so group_vars, host_vars, children and vault
files mean here exactly what they mean to a playbook run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(os.environ.get("ROOMCTL_HOME", Path(__file__).resolve().parents[2]))
LAB_INVENTORY = REPO / "inventory" / "lab"


def plain(value: Any) -> Any:
    """Turn Ansible's tagged containers and strings into plain Python values."""
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, str):
        return str(value)
    return value


@dataclass
class Host:
    """One host of the room, as the inventory places it."""

    name: str
    address: str
    zone: str
    groups: list[str]
    router_addresses: dict[str, str] = field(default_factory=dict)

    @property
    def is_router(self) -> bool:
        """Whether this host routes between zones (a firewall host)."""
        return bool(self.router_addresses)


@dataclass
class Room:
    """Everything an inventory says about a room, with each host's variables untemplated."""

    inventory: Path
    groups: dict[str, list[str]]
    hostvars: dict[str, dict[str, Any]]

    def setting(self, name: str, default: Any = None) -> Any:
        """A room-wide setting (group_vars/all), read from the first host that has it."""
        for values in self.hostvars.values():
            if name in values:
                return values[name]
        return default

    @property
    def zones(self) -> dict[str, dict[str, str]]:
        """The zones of the room and their networks."""
        return dict(self.setting("room_zones", {}) or {})

    def hosts(self, group: str = "all") -> list[Host]:
        """The hosts of a group, in inventory order."""
        found = []
        for name in self.groups.get(group, []):
            values = self.hostvars[name]
            found.append(
                Host(
                    name=name,
                    address=str(values.get("ansible_host", name)),
                    zone=str(values.get("room_zone", "")),
                    groups=sorted(g for g, members in self.groups.items() if name in members),
                    router_addresses=dict(values.get("room_router_addresses") or {}),
                )
            )
        return found

    def host(self, name: str) -> Host:
        """One host by name."""
        for candidate in self.hosts():
            if candidate.name == name:
                return candidate
        raise KeyError(name)

    def router_in(self, zone: str) -> str | None:
        """The address of the firewall host in a zone, if one is attached to it."""
        for candidate in self.hosts("firewalls"):
            if zone in candidate.router_addresses:
                return candidate.router_addresses[zone]
        return None


def load(inventory: Path, vault_password_file: Path | None = None) -> Room:
    """Read an inventory directory the way ansible-playbook would."""
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.parsing.vault import VaultSecret
    from ansible.plugins.vars import host_group_vars
    from ansible.vars.manager import VariableManager

    # Ansible remembers, per process, which group_vars files it found; a vault made since the
    # last load (by `lab up`, say) would stay unseen.
    host_group_vars.FOUND.clear()
    loader = DataLoader()
    if vault_password_file and vault_password_file.exists():
        secret = VaultSecret(vault_password_file.read_bytes().strip())
        loader.set_vault_secrets([("default", secret)])
    manager = InventoryManager(loader=loader, sources=[str(inventory)])
    variables = VariableManager(loader=loader, inventory=manager)
    groups = {name: list(members) for name, members in manager.get_groups_dict().items()}
    hostvars: dict[str, dict[str, Any]] = {}
    for host in manager.get_hosts():
        values = variables.get_vars(host=host, include_hostvars=False)
        hostvars[host.name] = {
            key: plain(value)
            for key, value in values.items()
            if not key.startswith("ansible_") or key in ("ansible_host", "ansible_user")
        }
    return Room(inventory=inventory, groups=groups, hostvars=hostvars)
