"""Converging: a second run changes nothing, and a dry run shows a pending change without
making it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from roomctl import converge as converge_mod
from roomctl import room as room_mod

CHRONY = "/etc/chrony/chrony.conf"


def test_a_second_converge_changes_nothing_on_any_host(converged: converge_mod.Result) -> None:
    again = converge_mod.converge("site", inventory=room_mod.LAB_INVENTORY, summary=False)
    assert again.ok, again.stats
    changed = {host: count for host, count in again.changed().items() if count}
    assert not changed, f"the second converge changed tasks: {changed}"
    assert set(again.stats) == set(converged.stats)


GROUP_PLAYBOOKS = sorted(
    p.stem for p in converge_mod.PLAYBOOKS.glob("*.yml") if p.stem not in ("site", "preflight")
)


@pytest.mark.parametrize("playbook", GROUP_PLAYBOOKS)
def test_each_group_playbook_changes_nothing_on_a_converged_room(
    converged: converge_mod.Result, playbook: str
) -> None:
    again = converge_mod.converge(playbook, inventory=room_mod.LAB_INVENTORY, summary=False)
    assert again.ok, again.stats
    assert again.stats, f"{playbook} ran on no host"
    changed = {host: count for host, count in again.changed().items() if count}
    assert not changed, f"{playbook} changed tasks on a converged room: {changed}"


@pytest.fixture
def drifted_app1(host: Callable[[str], Any]) -> Iterator[Any]:
    """A hand edit on app1 that the next converge should undo."""
    session = host("app1")
    session.run_expect([0], f"echo '# hand edit' >> {CHRONY}")
    yield session
    converge_mod.converge("site", inventory=room_mod.LAB_INVENTORY, limit="app1", summary=False)


@pytest.mark.destructive
def test_a_dry_run_reports_a_drift_and_leaves_it(
    drifted_app1: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    dry = converge_mod.converge(
        "site",
        inventory=room_mod.LAB_INVENTORY,
        check=True,
        diff=True,
        limit="app1",
        summary=False,
    )
    assert dry.ok, dry.stats
    assert dry.changed().get("app1", 0) >= 1, dry.stats
    assert "-# hand edit" in capfd.readouterr().out
    assert "# hand edit" in drifted_app1.file(CHRONY).content_string


def test_a_dry_run_of_a_converged_room_reports_no_change(converged: converge_mod.Result) -> None:
    dry = converge_mod.converge("site", inventory=room_mod.LAB_INVENTORY, check=True, summary=False)
    assert dry.ok, dry.stats
    assert not {host: n for host, n in dry.changed().items() if n}, dry.stats
