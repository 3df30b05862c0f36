"""Checks of a room's inventory that run before any host is touched.

Each problem names what is wrong and the fix. The same checks run from `roomctl
check-inventory`, from `roomctl converge` before it starts Ansible, and as the first play of every
playbook (the roomctl_preflight action), so a plain ansible-playbook run is guarded too.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REQUIRED_GROUPS = {
    "room": "every provisioned host (children: the groups below)",
    "firewalls": "the perimeter firewall and router between the zones",
    "databases": "the database hosts (children: db_primary, db_standby)",
    "db_primary": "the database host that is primary at first",
    "db_standby": "the synchronous standby database hosts",
    "app_servers": "the hosts of the registration app",
    "backup": "the backup repository hosts (children: backup_onsite, backup_offsite)",
    "backup_onsite": "the on-site backup repository host",
    "backup_offsite": "the off-site backup repository host",
    "mgmt": "the control node (time, packages, logs, monitoring)",
    "ups_primary": "the host the UPS hangs off (NUT primary)",
    "ups_powered": "the hosts fed by the UPS",
    "clients": "test workstations; never provisioned (may be empty)",
}
EXACTLY_ONE = ("db_primary", "mgmt", "ups_primary")
AT_LEAST_ONE = ("firewalls", "db_standby", "app_servers", "backup_onsite", "backup_offsite")

EXAMPLE = "inventory/production.example/group_vars/all/room.yml"
REQUIRED_SETTINGS = {
    "room_zones": f"the zones and their networks; see {EXAMPLE}",
    "room_admins": f"the administrators and their SSH public keys; see {EXAMPLE}",
    "room_breakglass_key": "the public half of the sealed break-glass key",
    "room_breakglass_from": "the one mgmt address the break-glass key is accepted from",
    "room_time_mode": 'how time is kept: "discipline" (a real room) or "measure" (the lab)',
    "room_time_upstream": "the control node's upstream time sources ([] for an offline room)",
    "room_auditd_enabled": "whether hosts load kernel audit rules (true in a real room)",
    "room_package_route": 'how mgmt1 reaches the mirrors: "through_firewall" or "direct"',
    "room_package_mirror": "the Debian mirror the package proxy fetches from",
    "room_package_security_mirror": "the Debian security mirror the package proxy fetches from",
    "room_ups_driver": "the NUT driver of the UPS (dummy-ups in the lab)",
    "room_services": "ports of each service named by the flows (group_vars/all/policy.yml)",
    "room_flows": "the flow policy (group_vars/all/policy.yml)",
    "room_external_networks": "networks outside the room that flows may name",
}
CHOICES = {
    "room_time_mode": ("discipline", "measure"),
    "room_package_route": ("direct", "through_firewall"),
}
VAULT_SETTINGS = ("vault_room_ca_key", "vault_room_ca_cert", "vault_postgresql_passwords")
SECRET_NAME = re.compile(
    r"(^vault_|pass(word|wd|phrase)?$|^pass_|_pass_|pwd$|secret|token|credential|api_?key"
    r"|^psk$|_psk$|pgpass|private_key|_key_pem$|^room_ca_key$)",
    re.I,
)
PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----")
PORT = re.compile(r"\A(\d{1,5})/(tcp|udp)\Z")
HOST_NAME = re.compile(r"\A[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")
ACCOUNT_NAME = re.compile(r"\A[a-z_][a-z0-9_-]{0,31}\Z")
FLOW_NAME = re.compile(r"\A[a-z0-9][a-z0-9-]{0,62}\Z")
# Room-wide settings: every host must see the same value (no per-host or per-group override).
ROOM_WIDE = (
    "room_zones",
    "room_admins",
    "room_breakglass_key",
    "room_breakglass_from",
    "room_services",
    "room_flows",
    "room_external_networks",
    "room_time_mode",
    "room_auditd_enabled",
)
# Networks no flow or zone may name: they would stand for everything.
SHORTEST_PREFIX = {4: 8, 6: 16}
ENDPOINT_KINDS = ("zone", "group", "host", "external")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an inventory, and what to do about it."""

    what: str
    fix: str

    def __str__(self) -> str:
        return f"{self.what}\n    fix: {self.fix}"


class InventoryError(ValueError):
    """An inventory failed its checks; nothing was touched."""

    def __init__(self, inventory: str, problems: list[Problem]) -> None:
        self.problems = problems
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"{inventory}: {count}; no host was touched.\n{lines}")


def _hosts_of(groups: Mapping[str, Iterable[str]], name: str) -> list[str]:
    return list(groups.get(name, []))


def check_groups(groups: Mapping[str, Iterable[str]]) -> list[Problem]:
    """Every group of the reference room exists, with the right number of hosts."""
    problems = []
    for name, purpose in REQUIRED_GROUPS.items():
        if name not in groups:
            problems.append(
                Problem(
                    f"group {name} ({purpose}) is missing",
                    f"add group {name} to hosts.yml, as in inventory/production.example/hosts.yml",
                )
            )
    for name in EXACTLY_ONE:
        members = _hosts_of(groups, name)
        if name in groups and len(members) != 1:
            problems.append(
                Problem(
                    f"group {name} has {len(members)} hosts ({', '.join(members) or 'none'})",
                    f"put exactly one host in {name}",
                )
            )
    for name in AT_LEAST_ONE:
        if name in groups and not _hosts_of(groups, name):
            problems.append(Problem(f"group {name} has no host", f"add a host to {name}"))
    room = set(_hosts_of(groups, "room"))
    for name in REQUIRED_GROUPS:
        if name in ("room", "clients"):
            continue
        outside = [host for host in _hosts_of(groups, name) if host not in room]
        if outside:
            problems.append(
                Problem(
                    f"group {name} has hosts outside group room ({', '.join(outside)}), which "
                    "no playbook would provision or protect",
                    f"keep {name} under room's children in hosts.yml",
                )
            )
    for host in sorted(set().union(*[set(members) for members in groups.values()])):
        if not HOST_NAME.match(host):
            problems.append(
                Problem(
                    f"host name {host!r} is not a plain host name",
                    "name hosts with lower-case letters, digits and inner hyphens only",
                )
            )
    return problems


def check_settings(hostvars: Mapping[str, Mapping[str, Any]], hosts: list[str]) -> list[Problem]:
    """The room-wide settings every role relies on are set, with values that are understood."""
    problems = []
    for name, meaning in REQUIRED_SETTINGS.items():
        lacking = [host for host in hosts if name not in hostvars.get(host, {})]
        if lacking:
            problems.append(
                Problem(
                    f"{name} is not set ({meaning}) for {', '.join(lacking)}",
                    f"set {name} in group_vars/all/room.yml; {EXAMPLE} describes each setting",
                )
            )
    for name in VAULT_SETTINGS:
        lacking = [host for host in hosts if name not in hostvars.get(host, {})]
        if lacking:
            problems.append(
                Problem(
                    f"{name} is not set (generated secrets are kept in the vault)",
                    "create the vault, or add what it lacks: roomctl vault-init INVENTORY"
                    " --vault-password-file FILE [--add-missing]",
                )
            )
    for name in ROOM_WIDE:
        seen = {
            json.dumps(hostvars[host][name], sort_keys=True, default=str)
            for host in hosts
            if name in hostvars.get(host, {})
        }
        if len(seen) > 1:
            problems.append(
                Problem(
                    f"{name} is not the same on every host (a host or group overrides it)",
                    f"set {name} once, in group_vars/all; room-wide settings may not vary",
                )
            )
    for name, allowed in CHOICES.items():
        values = {str(hostvars[host][name]) for host in hosts if name in hostvars.get(host, {})}
        for value in sorted(values - set(allowed)):
            problems.append(
                Problem(
                    f"{name} is {value!r}, which is not one of {', '.join(allowed)}",
                    f"set {name} to one of {', '.join(allowed)} in group_vars/all/room.yml",
                )
            )
    return problems


def _templated(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value


def _public_key_problem(where: str, key: Any) -> Problem | None:
    """A problem if key is not one SSH public key line (templated values are checked later)."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.serialization import load_ssh_public_key

    if _templated(key):
        return None
    text = str(key).strip()
    if "\n" in text:
        return Problem(
            f"{where} holds more than one line",
            f"list each key as an entry of its own in {where}",
        )
    try:
        loaded = load_ssh_public_key(text.encode())
    except (ValueError, TypeError, IndexError, UnsupportedAlgorithm) as error:
        return Problem(
            f"{where} is not an SSH public key ({error}): {str(key)[:40]!r}",
            f"put the public key line (e.g. the content of id_ed25519.pub) in {where}",
        )
    size = getattr(loaded, "key_size", 256)
    if text.startswith("ssh-rsa") and size < 3072:
        return Problem(
            f"{where} is an RSA key of {size} bits",
            "use an ed25519 key (ssh-keygen -t ed25519), or RSA of 3072 bits or more",
        )
    return None


def check_keys(hostvars: Mapping[str, Mapping[str, Any]], hosts: list[str]) -> list[Problem]:
    """Administrators' and the break-glass key are real public keys, not placeholders."""
    if not hosts:
        return []
    values = hostvars[hosts[0]]
    problems = []
    admins = values.get("room_admins")
    if isinstance(admins, list):
        for index, admin in enumerate(admins):
            if not isinstance(admin, Mapping) or not admin.get("name"):
                problems.append(
                    Problem(
                        f"room_admins[{index}] has no name",
                        "give every administrator a name (the login) and ssh_keys",
                    )
                )
                continue
            if not ACCOUNT_NAME.match(str(admin["name"])) or admin["name"] == "root":
                problems.append(
                    Problem(
                        f"administrator name {admin['name']!r} is not a plain login name",
                        "use lower-case letters, digits, _ and -, at most 32, and never root",
                    )
                )
            keys = admin.get("ssh_keys")
            if isinstance(keys, str):
                problems.append(
                    Problem(
                        f"ssh_keys of administrator {admin['name']} is a string, not a list",
                        "write ssh_keys as a list: one '- ssh-ed25519 ...' line per key",
                    )
                )
                continue
            if not keys:
                problems.append(
                    Problem(
                        f"administrator {admin['name']} has no ssh_keys",
                        f"list {admin['name']}'s public keys under ssh_keys in room_admins",
                    )
                )
            for key in keys or []:
                found = _public_key_problem(f"room_admins ({admin['name']}) ssh_keys", key)
                if found:
                    problems.append(found)
    elif admins is not None and not _templated(admins):
        problems.append(Problem("room_admins is not a list", f"see {EXAMPLE}"))
    if "room_breakglass_key" in values:
        found = _public_key_problem("room_breakglass_key", values["room_breakglass_key"])
        if found:
            problems.append(found)
    return problems


def _zone_networks(
    zones: Any,
) -> tuple[dict[str, ipaddress.IPv4Network | ipaddress.IPv6Network], list[Problem]]:
    networks: dict[str, ipaddress.IPv4Network | ipaddress.IPv6Network] = {}
    problems = []
    if not isinstance(zones, Mapping) or not zones:
        return {}, [
            Problem(
                "room_zones is empty or not a mapping of zone name to {cidr: ...}",
                f"list the zones with their networks in room_zones, as in {EXAMPLE}",
            )
        ]
    for zone, spec in zones.items():
        cidr = spec.get("cidr") if isinstance(spec, Mapping) else None
        try:
            network = ipaddress.ip_network(str(cidr))
        except ValueError:
            problems.append(
                Problem(
                    f"zone {zone} has no valid cidr (got {cidr!r})",
                    f"set room_zones.{zone}.cidr to the zone's network, e.g. 192.0.2.0/24",
                )
            )
            continue
        if network.prefixlen < SHORTEST_PREFIX[network.version]:
            problems.append(
                Problem(
                    f"zone {zone} is the network {network}, which is far too wide",
                    f"set room_zones.{zone}.cidr to the zone's own network",
                )
            )
            continue
        networks[zone] = network
    names = sorted(networks)
    for index, first in enumerate(names):
        for second in names[index + 1 :]:
            if networks[first].version != networks[second].version:
                problems.append(
                    Problem(
                        f"zones {first} and {second} mix IPv4 and IPv6",
                        "give every zone a network of the same IP version",
                    )
                )
            elif networks[first].overlaps(networks[second]):
                problems.append(
                    Problem(
                        f"zones {first} and {second} overlap ({networks[first]}, "
                        f"{networks[second]})",
                        "give every zone a network of its own in room_zones",
                    )
                )
    return networks, problems


def _address_in(address: Any, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    try:
        return ipaddress.ip_address(str(address)) in network
    except ValueError:
        return False


def check_zones(
    groups: Mapping[str, Iterable[str]], hostvars: Mapping[str, Mapping[str, Any]]
) -> list[Problem]:
    """Every host sits in a known zone at an address of that zone; firewalls reach every zone."""
    room_hosts = _hosts_of(groups, "room") + _hosts_of(groups, "clients")
    if not room_hosts:
        return []
    zones = hostvars[room_hosts[0]].get("room_zones")
    if zones is None:
        return []  # reported by check_settings
    networks, problems = _zone_networks(zones)
    known = ", ".join(sorted(networks))
    firewalls = set(_hosts_of(groups, "firewalls"))
    holders: dict[str, list[str]] = {}
    for host in room_hosts:
        values = hostvars.get(host, {})
        addresses = {str(values.get("ansible_host"))}
        addresses |= {str(a) for a in (values.get("room_router_addresses") or {}).values()}
        for held in addresses:
            holders.setdefault(held, []).append(host)
    for shared, names in sorted(holders.items()):
        if len(names) > 1:
            problems.append(
                Problem(
                    f"hosts {', '.join(sorted(names))} share the address {shared}",
                    "give every host an address of its own",
                )
            )
    problems += _check_breakglass_source(groups, hostvars, networks)
    problems += _check_external(hostvars[room_hosts[0]], networks)
    for host in room_hosts:
        values = hostvars.get(host, {})
        zone = values.get("room_zone")
        if not zone:
            problems.append(
                Problem(
                    f"host {host} is in no zone (room_zone is not set)",
                    f"set room_zone for {host} in hosts.yml to one of: {known}",
                )
            )
            continue
        if zone not in networks:
            problems.append(
                Problem(
                    f"host {host} is in zone {zone!r}, which room_zones does not list",
                    f"set room_zone for {host} to one of: {known}, or add {zone} to room_zones",
                )
            )
            continue
        address = values.get("ansible_host")
        if not _address_in(address, networks[zone]):
            problems.append(
                Problem(
                    f"host {host} has address {address!r}, outside its zone {zone} "
                    f"({networks[zone]})",
                    f"set ansible_host for {host} to an address in {networks[zone]}",
                )
            )
        if host in firewalls:
            routers = values.get("room_router_addresses") or {}
            for name, network in networks.items():
                if not _address_in(routers.get(name), network):
                    problems.append(
                        Problem(
                            f"firewall {host} has no address in zone {name} ({network})",
                            f"set room_router_addresses.{name} for {host} to its address "
                            f"in {network}",
                        )
                    )
    return problems


def _check_breakglass_source(
    groups: Mapping[str, Iterable[str]],
    hostvars: Mapping[str, Mapping[str, Any]],
    networks: Mapping[str, ipaddress.IPv4Network | ipaddress.IPv6Network],
) -> list[Problem]:
    mgmt = _hosts_of(groups, "mgmt")
    if not mgmt:
        return []
    values = hostvars.get(mgmt[0], {})
    source = values.get("room_breakglass_from")
    zone = str(values.get("room_zone"))
    if source is None or _templated(source) or zone not in networks:
        return []
    if not _address_in(source, networks[zone]):
        return [
            Problem(
                f"room_breakglass_from is {source!r}, not one address in the mgmt zone "
                f"({networks[zone]})",
                "set room_breakglass_from to the address of the control node's console",
            )
        ]
    return []


def _check_external(
    values: Mapping[str, Any],
    networks: Mapping[str, ipaddress.IPv4Network | ipaddress.IPv6Network],
) -> list[Problem]:
    external = values.get("room_external_networks")
    if external is None:
        return []
    if not isinstance(external, Mapping):
        return [
            Problem(
                "room_external_networks is not a mapping of name to a list of networks",
                f"write it as in {EXAMPLE}",
            )
        ]
    problems = []
    for name, listed in external.items():
        if not isinstance(listed, list):
            problems.append(
                Problem(
                    f"room_external_networks.{name} is not a list",
                    f"write room_external_networks.{name} as a list of networks, or []",
                )
            )
            continue
        for item in listed:
            try:
                network = ipaddress.ip_network(str(item))
            except ValueError:
                problems.append(
                    Problem(
                        f"room_external_networks.{name} lists {item!r}, which is no network",
                        "write each entry as a network, e.g. 203.0.113.128/27",
                    )
                )
                continue
            if network.prefixlen < SHORTEST_PREFIX[network.version]:
                problems.append(
                    Problem(
                        f"room_external_networks.{name} lists {network}, which is far too wide",
                        "list the outside service's own networks only",
                    )
                )
            inside = [zone for zone, own in networks.items() if own.overlaps(network)]
            if inside and network.version == next(iter(networks.values())).version:
                problems.append(
                    Problem(
                        f"room_external_networks.{name} lists {network}, inside zone "
                        f"{', '.join(inside)}",
                        "external networks are outside the room; name room hosts by group",
                    )
                )
    return problems


def _firewall_overrides(
    groups: Mapping[str, Iterable[str]], hostvars: Mapping[str, Mapping[str, Any]]
) -> list[Problem]:
    problems = []
    firewalls = set(_hosts_of(groups, "firewalls"))
    filtered = set(_hosts_of(groups, "databases")) | set(_hosts_of(groups, "backup"))
    for host in _hosts_of(groups, "room"):
        values = hostvars.get(host, {})
        router = values.get("firewall_is_router")
        if router is not None and not _templated(router) and bool(router) != (host in firewalls):
            problems.append(
                Problem(
                    f"firewall_is_router is overridden on {host}",
                    "remove it: only hosts of group firewalls route between zones",
                )
            )
        outgoing = values.get("firewall_filter_output")
        if host in filtered and outgoing is not None and not _templated(outgoing) and not outgoing:
            problems.append(
                Problem(
                    f"firewall_filter_output is turned off on {host}",
                    "remove it: the register and backup hosts always filter outgoing traffic",
                )
            )
        extra = values.get("firewall_extra_input_rules") or []
        if not isinstance(extra, list) or any(re.search(r"\baccept\b", str(r)) for r in extra):
            problems.append(
                Problem(
                    f"firewall_extra_input_rules of {host} accepts traffic, or is not a list",
                    "extra rules may only count or drop; allow a connection with a flow in "
                    "policy.yml",
                )
            )
    return problems


def check_flows(
    groups: Mapping[str, Iterable[str]], hostvars: Mapping[str, Mapping[str, Any]]
) -> list[Problem]:
    """Every flow names known zones, groups, hosts, external networks and services."""
    room_hosts = _hosts_of(groups, "room")
    if not room_hosts:
        return []
    values = hostvars[room_hosts[0]]
    flows = values.get("room_flows")
    services = values.get("room_services") or {}
    if flows is None:
        return []  # reported by check_settings
    known: dict[str, set[str]] = {
        "zone": set((values.get("room_zones") or {}).keys()),
        "group": set(groups),
        "host": set(hostvars),
        "external": set((values.get("room_external_networks") or {}).keys()),
    }
    problems = _firewall_overrides(groups, hostvars)
    if not isinstance(services, Mapping) or not isinstance(flows, list):
        return [
            *problems,
            Problem(
                "room_services is not a mapping, or room_flows is not a list",
                "write them as in group_vars/all/policy.yml of inventory/production.example",
            ),
        ]
    for service, ports in services.items():
        if not isinstance(ports, list):
            problems.append(
                Problem(
                    f"service {service} has {ports!r} where a list of ports belongs",
                    f'write it as a list, e.g. {service}: ["{ports}"]',
                )
            )
            continue
        for port in ports:
            number = PORT.match(str(port))
            if not number or not 1 <= int(number.group(1)) <= 65535:
                problems.append(
                    Problem(
                        f"service {service} has port {port!r}",
                        'write each port as NUMBER/tcp or NUMBER/udp, 1 to 65535, e.g. "5432/tcp"',
                    )
                )
    seen: set[str] = set()
    for index, flow in enumerate(flows or []):
        name = flow.get("name") if isinstance(flow, Mapping) else None
        label = f"flow {name}" if name else f"flow #{index + 1}"
        if not isinstance(flow, Mapping):
            problems.append(Problem(f"{label} is not a mapping", "see group_vars/all/policy.yml"))
            continue
        if not name:
            problems.append(Problem(f"{label} has no name", "give every flow a unique name"))
        elif not FLOW_NAME.match(str(name)):
            problems.append(
                Problem(
                    f"{label!r} is not a plain name",
                    "name flows with lower-case letters, digits and hyphens only",
                )
            )
        elif name in seen:
            problems.append(Problem(f"{label} is defined twice", "give every flow a unique name"))
        seen.add(str(name))
        broken = False
        for key in ("from", "to", "services"):
            if not flow.get(key):
                problems.append(Problem(f"{label} has no {key!r}", f"list the flow's {key}"))
                broken = True
            elif not isinstance(flow.get(key), list):
                problems.append(
                    Problem(
                        f"{label} has {flow.get(key)!r} in {key!r}, where a list belongs",
                        f"write {key} as a list, e.g. {key}: [{flow.get(key)}]",
                    )
                )
                broken = True
        if broken:
            continue
        for key in ("from", "to"):
            for endpoint in flow.get(key) or []:
                kind, _, target = str(endpoint).partition(":")
                if kind not in ENDPOINT_KINDS or not target:
                    problems.append(
                        Problem(
                            f"{label} names {endpoint!r} in {key!r}",
                            "write endpoints as zone:NAME, group:NAME, host:NAME or external:NAME",
                        )
                    )
                elif target not in known[kind]:
                    choices = ", ".join(sorted(known[kind])) or "none"
                    problems.append(
                        Problem(
                            f"{label} names unknown {kind} {target!r} in {key!r}",
                            f"name one of the inventory's {kind}s ({choices}), or add {target} "
                            "to the inventory",
                        )
                    )
        for service in flow.get("services") or []:
            if service not in services:
                problems.append(
                    Problem(
                        f"{label} names unknown service {service!r}",
                        f"add {service} with its ports to room_services, or use one of: "
                        f"{', '.join(sorted(services))}",
                    )
                )
    return problems


class _VaultTagLoader(yaml.SafeLoader):
    """A YAML loader that reads `!vault` values as encrypted, without decrypting them."""


class Encrypted(str):
    """An inline `!vault` value."""


def _encrypted(loader: yaml.SafeLoader, node: yaml.Node) -> Encrypted:
    return Encrypted(loader.construct_scalar(node))  # type: ignore[arg-type]


def _unsafe(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    return str(loader.construct_scalar(node))  # type: ignore[arg-type]


_VaultTagLoader.add_constructor("!vault", _encrypted)
_VaultTagLoader.add_constructor("!unsafe", _unsafe)


def _walk(data: Any, path: str = "") -> Iterable[tuple[str, Any]]:
    if isinstance(data, Mapping):
        for key, value in data.items():
            yield from _walk(value, f"{path}.{key}" if path else str(key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _walk(value, f"{path}[{index}]")
    else:
        yield path, data


PLAIN_ASSIGNMENT = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*[:=]\s*\S", re.M)


def _secret_path(key: str) -> str | None:
    """The secret-named part of a dotted variable path, if any part is one."""
    for part in key.replace("[", ".").split("."):
        if SECRET_NAME.search(part):
            return part
    return None


def scan_secrets(inventory: Path) -> list[Problem]:
    """Secrets in an inventory are encrypted: whole vault files or inline !vault values.

    Every file below the inventory is read (Ansible loads YAML, JSON and INI files there).
    """
    problems = []
    files = sorted(path for path in inventory.rglob("*") if path.is_file())
    for path in files:
        text = path.read_text(errors="replace")
        relative = path.relative_to(inventory)
        if text.lstrip().startswith("$ANSIBLE_VAULT") or path.suffix in (".md", ".txt"):
            continue
        if PRIVATE_KEY.search(text.replace("\\x20", " ")):
            problems.append(
                Problem(
                    f"{relative} holds a private key in plain text",
                    "move it into the encrypted vault: ansible-vault edit "
                    f"{inventory / 'group_vars/all/vault.yml'}",
                )
            )
            continue
        try:
            data = yaml.load(text, Loader=_VaultTagLoader)  # noqa: S506 - SafeLoader subclass
        except yaml.YAMLError as error:
            if path.suffix in (".yml", ".yaml", ".json"):
                problems.append(
                    Problem(f"{relative} is not valid YAML: {error}", f"correct {relative}")
                )
                continue
            data = None
        if not isinstance(data, Mapping | list):
            # An INI inventory or other text: look for NAME=value or NAME: value lines.
            for match in PLAIN_ASSIGNMENT.finditer(text):
                if SECRET_NAME.search(match.group(1)):
                    problems.append(
                        Problem(
                            f"{relative}: {match.group(1)} is a secret in plain text",
                            "move it into an ansible-vault encrypted vault.yml",
                        )
                    )
            continue
        for key, value in _walk(data):
            leaf = _secret_path(key)
            if leaf is None or isinstance(value, Encrypted):
                continue
            plain_value = isinstance(value, str | int | float) and not isinstance(value, bool)
            if plain_value and str(value) and not _templated(value):
                problems.append(
                    Problem(
                        f"{relative}: {key} is a secret in plain text",
                        f"encrypt it: ansible-vault encrypt_string --name {leaf} (paste the "
                        f"value), or move it into an ansible-vault encrypted vault.yml",
                    )
                )
    return problems


def validate(
    groups: Mapping[str, Iterable[str]],
    hostvars: Mapping[str, Mapping[str, Any]],
    inventory: Path | None,
) -> list[Problem]:
    """Every check of an inventory, in the order an operator would fix them."""
    problems = check_groups(groups)
    problems += check_settings(hostvars, _hosts_of(groups, "room"))
    problems += check_keys(hostvars, _hosts_of(groups, "room"))
    problems += check_zones(groups, hostvars)
    problems += check_flows(groups, hostvars)
    if inventory is not None:
        problems += scan_secrets(inventory)
    return problems
