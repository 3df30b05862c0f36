"""Fixtures of the unit tests: inventories copied to a temporary directory, never a lab or network.

The example production inventory is copied and given a vault of its own, so that a test can break
one thing in an otherwise sound room.
"""

from __future__ import annotations

import re
import secrets
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from roomctl import cli

REPO = Path(__file__).resolve().parents[2]
LAB = REPO / "inventory" / "lab"
EXAMPLE = REPO / "inventory" / "production.example"


@pytest.fixture(autouse=True)
def _no_vault_password_from_outside(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep a vault password file set in the caller's environment out of the tests."""
    monkeypatch.delenv("ANSIBLE_VAULT_PASSWORD_FILE", raising=False)


@pytest.fixture
def vault_password(tmp_path: Path) -> Path:
    """A vault password file of the test's own, outside the inventory."""
    path = tmp_path / "vault-pass"
    path.touch(mode=0o600)
    path.write_text(secrets.token_urlsafe(32) + "\n")
    return path


def public_key_line(comment: str) -> str:
    """A fresh SSH public key line, as an operator would paste it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate().public_key()
    raw = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return f"{raw.decode()} {comment}"


@pytest.fixture
def sound_copy(tmp_path: Path, vault_password: Path) -> Path:
    """A copy of the example production inventory with its placeholder keys replaced by real
    public keys and a vault made by `roomctl vault-init`."""
    inventory = tmp_path / "inventory"
    shutil.copytree(EXAMPLE, inventory, ignore=shutil.ignore_patterns("vault.yml"))
    room = inventory / "group_vars" / "all" / "room.yml"
    text = room.read_text()
    for placeholder in re.findall(r"ssh-ed25519 REPLACE-[A-Z-]+ \S+", text):
        text = text.replace(placeholder, public_key_line(placeholder.rsplit(" ", 1)[-1]))
    room.write_text(text)
    result = CliRunner().invoke(
        cli.main,
        ["vault-init", str(inventory), "--vault-password-file", str(vault_password)],
    )
    assert result.exit_code == 0, result.output
    return inventory
