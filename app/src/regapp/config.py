"""The app's settings, from one TOML file written by Ansible (roles/regapp)."""

from __future__ import annotations

import datetime as dt
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PATH = Path("/etc/regapp/regapp.toml")


class ConfigError(RuntimeError):
    """A setting is missing or wrong; the message names the file, the key and the fix."""


@dataclass(frozen=True)
class Config:
    path: Path
    hosts: tuple[str, ...]
    port: int
    database: str
    ca_file: str
    app_user: str
    app_password_file: Path
    read_user: str
    read_password_file: Path
    migrate_user: str
    migrate_password_file: Path
    secret_key_file: Path
    qualifying_date: dt.date
    minimum_age: int
    lockout_failures: int
    lockout_minutes: int
    session_hours: int

    def dsn(self, role: str) -> str:
        """libpq connection string for role "app", "read" or "migrate" (no password in it)."""
        user = {"app": self.app_user, "read": self.read_user, "migrate": self.migrate_user}[role]
        attrs = "prefer-standby" if role == "read" else "read-write"
        return (
            f"host={','.join(self.hosts)} port={self.port} dbname={self.database} user={user} "
            f"sslmode=verify-full sslrootcert={self.ca_file} target_session_attrs={attrs} "
            f"connect_timeout=3 application_name=regapp"
        )

    def password(self, role: str) -> str:
        path = {
            "app": self.app_password_file,
            "read": self.read_password_file,
            "migrate": self.migrate_password_file,
        }[role]
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"cannot read the {role} role's password from {path}: {exc.strerror}; "
                "converge app1 (./roomctl converge --limit app1) or run as root"
            ) from exc


def _get(table: dict[str, object], section: str, key: str, path: Path) -> object:
    try:
        part = table[section]
        if not isinstance(part, dict):
            raise KeyError(section)
        return part[key]
    except KeyError:
        raise ConfigError(f"{path}: [{section}] {key} is missing; add it") from None


def load(path: Path | None = None) -> Config:
    path = path or Path(os.environ.get("REGAPP_CONFIG", DEFAULT_PATH))
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(
            f"cannot read {path}: {exc.strerror}; set REGAPP_CONFIG or converge app1"
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc

    def get(section: str, key: str, kind: type, default: object = None) -> object:
        try:
            value = _get(raw, section, key, path)
        except ConfigError:
            if default is None:
                raise
            value = default
        if kind is dt.date and isinstance(value, str):
            try:
                value = dt.date.fromisoformat(value)
            except ValueError:
                raise ConfigError(
                    f"{path}: [{section}] {key} = {value!r} is not a date like 2028-07-01"
                ) from None
        if not isinstance(value, kind):
            raise ConfigError(f"{path}: [{section}] {key} must be a {kind.__name__}")
        return value

    hosts = get("database", "hosts", list)
    if not isinstance(hosts, list) or not hosts:
        raise ConfigError(f"{path}: [database] hosts must list the database hosts")
    return Config(
        path=path,
        hosts=tuple(str(h) for h in hosts),
        port=int(str(get("database", "port", int, 5432))),
        database=str(get("database", "name", str, "register")),
        ca_file=str(get("database", "ca_file", str, "/etc/roomctl/tls/ca.crt")),
        app_user=str(get("database", "app_user", str, "register_app")),
        app_password_file=Path(str(get("database", "app_password_file", str))),
        read_user=str(get("database", "read_user", str, "register_read")),
        read_password_file=Path(str(get("database", "read_password_file", str))),
        migrate_user=str(get("database", "migrate_user", str, "register_migrate")),
        migrate_password_file=Path(str(get("database", "migrate_password_file", str))),
        secret_key_file=Path(str(get("web", "secret_key_file", str))),
        qualifying_date=get("election", "qualifying_date", dt.date),  # type: ignore[arg-type]
        minimum_age=int(str(get("election", "minimum_age", int, 18))),
        lockout_failures=int(str(get("security", "lockout_failures", int, 5))),
        lockout_minutes=int(str(get("security", "lockout_minutes", int, 15))),
        session_hours=int(str(get("security", "session_hours", int, 8))),
    )
