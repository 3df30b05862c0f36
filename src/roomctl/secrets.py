"""The room's secrets: an ansible-vault file per inventory and the internal certificate authority.

Secrets are written only encrypted. The vault password lives in a file outside the repository
(for the lab, in the lab's state directory); a real room keeps it wherever its operators keep
their vault password, and passes it with --vault-password-file.
"""

from __future__ import annotations

import datetime
import logging
import os
import secrets as random_source
from collections.abc import Callable
from pathlib import Path

import yaml

log = logging.getLogger(__name__)

VAULT_FILE = Path("group_vars") / "all" / "vault.yml"
CA_LIFETIME = datetime.timedelta(days=3650)


def _new_ca(common_name: str) -> tuple[str, str]:
    """A new CA key and self-signed certificate, both PEM."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    return key_pem, cert_pem


MINIMUM_PASSWORD = 16


def read_password(password_file: Path) -> bytes:
    """The vault password in a plain file, refusing what would protect nothing or mislead."""
    if os.access(password_file, os.X_OK):
        raise ValueError(
            f"{password_file} is executable; Ansible would run it as a script, roomctl reads "
            "it. Write the password into a plain file (chmod 600) instead"
        )
    password = password_file.read_bytes().strip()
    if len(password) < MINIMUM_PASSWORD:
        raise ValueError(
            f"the vault password in {password_file} has {len(password)} characters; use at "
            f"least {MINIMUM_PASSWORD} (e.g. openssl rand -base64 32 > {password_file})"
        )
    return password


def encrypt(plaintext: str, password_file: Path) -> str:
    """Encrypt text with ansible-vault, using the password in password_file."""
    from ansible.parsing.vault import VaultLib, VaultSecret

    secret = VaultSecret(read_password(password_file))
    vault = VaultLib([("default", secret)])
    return str(vault.encrypt(plaintext.encode(), secret).decode())


def decrypt(ciphertext: str, password_file: Path) -> str:
    """Decrypt an ansible-vault file's text."""
    from ansible.parsing.vault import VaultLib, VaultSecret

    secret = VaultSecret(read_password(password_file))
    return str(VaultLib([("default", secret)]).decrypt(ciphertext.encode()).decode())


# The register's login roles, each with a password the vault makes (roles/postgresql/vars).
DATABASE_ROLES = (
    "register_migrate",
    "register_app",
    "register_read",
    "roomctl_replica",
    "roomctl_backup",
)


def _new_password() -> str:
    return random_source.token_urlsafe(24)


def _generated(existing: dict[str, object]) -> dict[str, object]:
    """Secrets the vault must hold that are missing from existing, newly made."""
    added: dict[str, object] = {}
    passwords = dict(existing.get("vault_postgresql_passwords") or {})  # type: ignore[call-overload]
    missing = [role for role in DATABASE_ROLES if role not in passwords]
    if missing:
        passwords.update({role: _new_password() for role in missing})
        added["vault_postgresql_passwords"] = passwords
    return added


def _write_vault(path: Path, data: dict[str, object], password_file: Path) -> None:
    content = yaml.safe_dump(data, sort_keys=True, width=120)
    path.parent.mkdir(parents=True, exist_ok=True)
    ciphertext = encrypt("---\n" + content, password_file)
    partial = path.with_suffix(".partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(ciphertext)
    partial.rename(path)


def init_vault(inventory: Path, password_file: Path, room_name: str) -> Path:
    """Write a new encrypted vault for an inventory: the room CA and the database passwords."""
    path = inventory / VAULT_FILE
    if path.exists() or path.is_symlink():
        raise FileExistsError(
            f"{path} exists already; add what it lacks with `roomctl vault-init --add-missing`,"
            f" or edit it with `ansible-vault edit {path}`."
        )
    key_pem, cert_pem = _new_ca(f"{room_name} room CA")
    data: dict[str, object] = {"vault_room_ca_key": key_pem, "vault_room_ca_cert": cert_pem}
    data.update(_generated(data))
    _write_vault(path, data, password_file)
    return path


def add_missing(inventory: Path, password_file: Path) -> list[str]:
    """Add the generated secrets an existing vault lacks; what it holds is never changed."""
    path = inventory / VAULT_FILE
    data = yaml.safe_load(decrypt(path.read_text(), password_file)) or {}
    added = _generated(data)
    if added:
        data.update(added)
        _write_vault(path, data, password_file)
    return sorted(added)


def ensure_lab_vault(inventory: Path, password_file: Path, progress: Callable[[str], None]) -> None:
    """Make the lab's vault password and vault on first use; keep them afterwards."""
    vault = inventory / VAULT_FILE
    if not password_file.exists():
        if vault.exists():
            progress(f"{vault} has no password here any more: making a new lab vault")
            vault.unlink()
        password_file.parent.mkdir(parents=True, exist_ok=True)
        password_file.touch(mode=0o600)
        password_file.write_text(random_source.token_urlsafe(32) + "\n")
    if vault.exists():
        try:
            decrypt(vault.read_text(), password_file)
        except Exception:  # Ansible's vault raises its own error types
            # Another checkout sharing this state directory made a new lab password: the lab's
            # vault holds only the lab's own generated CA, so it is made anew.
            progress(f"{vault} does not open with the lab's password: making a new lab vault")
            vault.unlink()
    if not vault.exists():
        progress("making the lab's vault (room CA, database passwords)")
        init_vault(inventory, password_file, "Lab")
    added = add_missing(inventory, password_file)
    if added:
        progress(f"added {', '.join(added)} to the lab's vault")
