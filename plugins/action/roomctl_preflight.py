"""Action roomctl_preflight: check the inventory on the controller before any host is touched.

It runs the same checks as `roomctl check-inventory` (the roomctl.policy module), so that a plain
ansible-playbook run is guarded as well as one started by roomctl.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ansible.plugins.action import ActionBase

DOCUMENTATION = """
module: roomctl_preflight
short_description: Check the room's inventory before any host is touched
description:
  - Fails with one message per problem (what is wrong, and the fix) when a group is missing, a
    room setting is unset, a host is in no zone, a flow names an unknown host, group, zone or
    service, or a secret is stored unencrypted.
options: {}
"""


class ActionModule(ActionBase):
    """Run roomctl.policy.validate over the inventory's groups and host variables."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        from roomctl import policy

        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        groups = {name: list(hosts) for name, hosts in task_vars["groups"].items()}
        sources = [Path(str(s)) for s in task_vars.get("ansible_inventory_sources", [])]
        # An inventory given as its hosts file is checked as the directory that holds it.
        folders = [s if s.is_dir() else s.parent for s in sources]
        inventory = folders[0] if folders else None
        problems = policy.validate(groups, task_vars["hostvars"], inventory)
        result["changed"] = False
        if problems:
            result["failed"] = True
            result["msg"] = str(policy.InventoryError(str(inventory or sources), problems))
        else:
            result["msg"] = "inventory is sound"
        return result
