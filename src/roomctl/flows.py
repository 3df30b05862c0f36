"""The flow policy, compiled into what each host's firewall allows.

A flow (group_vars/all/policy.yml) names its sources and destinations as zones, groups, hosts or
external networks, and its services by name. This module turns them into addresses and ports:
the rules a host accepts as a destination (input), the rules it may start as a source (output,
for hosts that filter outgoing traffic), and, for the firewall host, what it forwards between
zones. Both the firewall role (through the roomctl_firewall_rules filter) and the reachability
tests read the policy through this module, so there is one reading of it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Rule:
    """One allowed flow for one host: addresses on the far side, protocol and ports."""

    flow: str
    protocol: str
    ports: tuple[int, ...]
    sources: tuple[str, ...] = ()
    destinations: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The rule as plain data, for templates."""
        return {
            "flow": self.flow,
            "protocol": self.protocol,
            "ports": list(self.ports),
            "sources": list(self.sources),
            "destinations": list(self.destinations),
        }


class Policy:
    """The room's flows, with the inventory that gives their names addresses."""

    def __init__(
        self, groups: Mapping[str, Iterable[str]], hostvars: Mapping[str, Mapping[str, Any]]
    ) -> None:
        self.groups = {name: list(members) for name, members in groups.items()}
        self.hostvars = hostvars
        room = self.groups.get("room", [])
        settings = hostvars[room[0]] if room else {}
        self.zones: dict[str, str] = {
            name: str(spec["cidr"]) for name, spec in (settings.get("room_zones") or {}).items()
        }
        self.services: dict[str, list[str]] = dict(settings.get("room_services") or {})
        self.external: dict[str, list[str]] = dict(settings.get("room_external_networks") or {})
        self.flows: list[Mapping[str, Any]] = list(settings.get("room_flows") or [])

    def address(self, host: str) -> str:
        """A host's address in its own zone."""
        return str(self.hostvars[host]["ansible_host"])

    def hosts(self, endpoint: str) -> list[str]:
        """The inventory hosts an endpoint stands for (none for an external network)."""
        kind, _, name = endpoint.partition(":")
        if kind == "host":
            return [name]
        if kind == "group":
            return list(self.groups.get(name, []))
        if kind == "zone":
            every = self.groups.get("room", []) + self.groups.get("clients", [])
            return [h for h in every if self.hostvars[h].get("room_zone") == name]
        return []

    def addresses(self, endpoint: str) -> list[str]:
        """The addresses or networks an endpoint stands for."""
        kind, _, name = endpoint.partition(":")
        if kind == "zone":
            return [self.zones[name]]
        if kind == "external":
            return [str(network) for network in self.external.get(name, [])]
        return [self.address(host) for host in self.hosts(endpoint)]

    def ports(self, services: Iterable[str]) -> dict[str, tuple[int, ...]]:
        """Ports by protocol for a list of service names."""
        found: dict[str, set[int]] = {}
        for service in services:
            for port in self.services[service]:
                number, _, protocol = str(port).partition("/")
                found.setdefault(protocol, set()).add(int(number))
        return {protocol: tuple(sorted(numbers)) for protocol, numbers in sorted(found.items())}

    def _resolved(self, side: str, flow: Mapping[str, Any]) -> list[str]:
        return sorted(
            {address for endpoint in flow[side] for address in self.addresses(str(endpoint))},
            key=_address_key,
        )

    def _members(self, side: str, flow: Mapping[str, Any]) -> set[str]:
        return {host for endpoint in flow[side] for host in self.hosts(str(endpoint))}

    def _host_rules(self, host: str, own_side: str) -> list[Rule]:
        """Rules of the flows that name host on own_side ("to" or "from")."""
        far_side = "from" if own_side == "to" else "to"
        rules = []
        for flow in self.flows:
            if host not in self._members(own_side, flow):
                continue
            addresses = tuple(self._resolved(far_side, flow))
            if not addresses:
                continue
            for protocol, ports in self.ports(flow["services"]).items():
                if far_side == "from":
                    rules.append(Rule(str(flow["name"]), protocol, ports, sources=addresses))
                else:
                    rules.append(Rule(str(flow["name"]), protocol, ports, destinations=addresses))
        return rules

    def input_rules(self, host: str) -> list[Rule]:
        """What the host accepts as a destination."""
        return self._host_rules(host, "to")

    def output_rules(self, host: str) -> list[Rule]:
        """What the host may start as a source."""
        return self._host_rules(host, "from")

    def flow_sources(self, flow_name: str, host: str) -> list[str]:
        """The addresses a named flow lets reach host; none if host is not a destination of it."""
        for flow in self.flows:
            if flow["name"] == flow_name:
                if host not in self._members("to", flow):
                    return []
                return self._resolved("from", flow)
        raise KeyError(f"no flow named {flow_name!r} in room_flows")

    def forward_rules(self) -> list[Rule]:
        """What the firewall host forwards between zones (and out of the room)."""
        rules = []
        for flow in self.flows:
            sources = tuple(self._resolved("from", flow))
            destinations = tuple(self._resolved("to", flow))
            if not sources or not destinations:
                continue
            for protocol, ports in self.ports(flow["services"]).items():
                rules.append(Rule(str(flow["name"]), protocol, ports, sources, destinations))
        return rules

    def allowed(self, source: str, target: str, port: int, protocol: str = "tcp") -> bool:
        """Whether the policy lets host source start a connection to host target's port."""
        for flow in self.flows:
            if source not in self._members("from", flow) or target not in self._members("to", flow):
                continue
            if port in self.ports(flow["services"]).get(protocol, ()):
                return True
        return False


def _address_key(text: str) -> tuple[int, int, int]:
    network = ipaddress.ip_network(text, strict=False)
    return (network.version, int(network.network_address), network.prefixlen)
