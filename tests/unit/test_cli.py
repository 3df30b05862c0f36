"""`roomctl check-inventory` as an operator sees it: the exit code and the message."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from roomctl import cli


def _check(inventory: Path, vault_password: Path) -> Result:
    return CliRunner().invoke(
        cli.main,
        ["check-inventory", str(inventory), "--vault-password-file", str(vault_password)],
    )


def _words(text: str) -> str:
    """Text with its line breaks undone: the console wraps long messages at its width."""
    return " ".join(text.split())


@pytest.fixture
def broken_copy(sound_copy: Path) -> Path:
    """The sound copy with one host placed in a zone the room does not have."""
    hosts = sound_copy / "hosts.yml"
    data = yaml.safe_load(hosts.read_text())
    servers = data["all"]["children"]["room"]["children"]["app_servers"]["hosts"]
    servers["app1"]["room_zone"] = "dmz"
    hosts.write_text(yaml.safe_dump(data, sort_keys=False))
    return sound_copy


def test_check_inventory_exits_0_on_a_sound_inventory(
    sound_copy: Path, vault_password: Path
) -> None:
    result = _check(sound_copy, vault_password)
    assert result.exit_code == 0, result.output


def test_check_inventory_exits_1_on_a_broken_inventory(
    broken_copy: Path, vault_password: Path
) -> None:
    result = _check(broken_copy, vault_password)
    assert result.exit_code == 1, result.output


def test_check_inventory_names_the_fix_on_stderr(broken_copy: Path, vault_password: Path) -> None:
    result = _check(broken_copy, vault_password)
    fix = "set room_zone for app1 to one of: mgmt, office, offsite, servers, or add dmz"
    assert fix in _words(result.stderr), result.output
