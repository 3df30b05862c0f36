"""The vault: what `roomctl vault-init` writes, and what --add-missing adds to an older vault."""

from __future__ import annotations

from pathlib import Path

import yaml

from roomctl import secrets


def _read(inventory: Path, password: Path) -> dict[str, object]:
    text = (inventory / secrets.VAULT_FILE).read_text()
    assert text.startswith("$ANSIBLE_VAULT;"), "the vault is not encrypted"
    return dict(yaml.safe_load(secrets.decrypt(text, password)))


def test_a_new_vault_holds_the_room_ca_and_a_password_per_database_role(
    tmp_path: Path, vault_password: Path
) -> None:
    secrets.init_vault(tmp_path, vault_password, "Test")
    data = _read(tmp_path, vault_password)
    assert "BEGIN PRIVATE KEY" in str(data["vault_room_ca_key"])
    passwords = data["vault_postgresql_passwords"]
    assert isinstance(passwords, dict)
    assert sorted(passwords) == sorted(secrets.DATABASE_ROLES)
    assert len(set(passwords.values())) == len(passwords)
    assert all(len(value) >= 24 for value in passwords.values())


def test_add_missing_fills_an_older_vault_and_keeps_what_it_held(
    tmp_path: Path, vault_password: Path
) -> None:
    secrets.init_vault(tmp_path, vault_password, "Test")
    data = _read(tmp_path, vault_password)
    passwords = dict(data.pop("vault_postgresql_passwords"))  # type: ignore[call-overload]
    kept = passwords.pop("register_app")
    data["vault_postgresql_passwords"] = {"register_app": kept}
    path = tmp_path / secrets.VAULT_FILE
    path.write_text(secrets.encrypt("---\n" + yaml.safe_dump(data), vault_password))

    added = secrets.add_missing(tmp_path, vault_password)

    assert added == ["vault_postgresql_passwords"]
    after = _read(tmp_path, vault_password)
    new_passwords = after["vault_postgresql_passwords"]
    assert isinstance(new_passwords, dict)
    assert new_passwords["register_app"] == kept
    assert sorted(new_passwords) == sorted(secrets.DATABASE_ROLES)
    assert after["vault_room_ca_key"] == data["vault_room_ca_key"]
    assert secrets.add_missing(tmp_path, vault_password) == []
