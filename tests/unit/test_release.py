"""The release code's own decisions, without a host: which releases stay, and how pyinfra is
told about the room (the same inventory Ansible reads)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from roomctl import release as release_mod
from roomctl import room as room_mod

LAB = Path(__file__).resolve().parents[2] / "inventory" / "lab"


def test_releases_are_ordered_by_their_time_whatever_their_version() -> None:
    names = ["0.10.0-20270102T000000Z", "0.9.0-20270101T000000Z", "0.10.0-20261231T235959Z"]
    assert release_mod.release_order(names) == [
        "0.10.0-20261231T235959Z",
        "0.9.0-20270101T000000Z",
        "0.10.0-20270102T000000Z",
    ]


def test_pruning_keeps_the_newest_and_never_the_current_or_the_previous_one() -> None:
    names = [f"0.1.0-2027010{day}T000000Z" for day in range(1, 7)]
    # After a rollback the current release can be an old one.
    assert release_mod.to_prune(names, current=names[0], previous=names[5]) == names[1:3]
    assert release_mod.to_prune(names[:3], current=names[2], previous=names[1]) == []


def test_release_ids_are_a_version_and_a_utc_time() -> None:
    assert release_mod.RELEASE_ID.match("0.1.0-20261204T220501Z")
    for bad in ("0.1.0", "../0.1.0-20261204T220501Z", "0.1.0-20261204T220501Z/x", "current"):
        assert not release_mod.RELEASE_ID.match(bad), bad


def test_pyinfra_reads_the_ansible_inventory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROOMCTL_LAB_STATE", str(tmp_path / "lab-state"))
    inventory = tmp_path / "lab"
    shutil.copytree(LAB, inventory, ignore=shutil.ignore_patterns("vault.yml"))
    room = room_mod.load(inventory)
    ssh_config = tmp_path / "ssh_config"
    ssh_config.write_text("Host 198.18.1.20\n  StrictHostKeyChecking accept-new\n")

    found = release_mod.pyinfra_inventory(room, ssh_config)

    assert sorted(host.name for host in found) == sorted(h.name for h in room.hosts("room"))
    assert [host.name for host in found.get_group("app_servers")] == ["app1"]
    app1 = found.get_host("app1")
    assert app1.data.ssh_hostname == "198.18.1.20"
    assert app1.data.ssh_user == "ops"
    assert app1.data.ssh_config_file == str(ssh_config)
    assert app1.data.ssh_strict_host_key_checking == "accept-new"
    assert found.get_host("db1").data.ssh_strict_host_key_checking == "yes"
