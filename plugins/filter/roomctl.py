"""Filter roomctl_firewall_rules: the flow policy compiled for one host (see roomctl.flows)."""

from __future__ import annotations

from typing import Any


def roomctl_firewall_rules(hostvars: Any, groups: Any, host: str) -> dict[str, Any]:
    """Input, output and forward rules of a host, as plain data for the ruleset template."""
    from roomctl.flows import Policy

    policy = Policy({name: list(members) for name, members in groups.items()}, hostvars)
    return {
        "input": [rule.as_dict() for rule in policy.input_rules(host)],
        "output": [rule.as_dict() for rule in policy.output_rules(host)],
        "forward": [rule.as_dict() for rule in policy.forward_rules()],
    }


def roomctl_flow_sources(hostvars: Any, groups: Any, host: str, flow: str) -> list[str]:
    """The addresses the named flow lets reach host (for rules outside the firewall: pg_hba)."""
    from roomctl.flows import Policy

    policy = Policy({name: list(members) for name, members in groups.items()}, hostvars)
    return policy.flow_sources(flow, host)


class FilterModule:
    """The roomctl filters."""

    def filters(self) -> dict[str, Any]:
        """Name each filter."""
        return {
            "roomctl_firewall_rules": roomctl_firewall_rules,
            "roomctl_flow_sources": roomctl_flow_sources,
        }
