"""Schema migrations: numbered SQL files, applied in order, each once, each in one transaction.

A release only adds (tables, columns, functions, indexes), so the release before it still runs
on the new schema and a rollback needs no down-migration. Before anything is applied the
register gets a named restore point, for point-in-time recovery if a migration goes wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from regapp import release_id

# Statements that remove or rename what the release before may still use.
_DESTRUCTIVE = re.compile(
    r"\bDROP\b|\bRENAME\b|\bDISABLE\s+TRIGGER\b|\bALTER\s+COLUMN\s+\S+\s+(SET\s+DATA\s+)?TYPE\b"
    r"|^\s*TRUNCATE\b|^\s*DELETE\b|^\s*UPDATE\b",
    re.IGNORECASE | re.MULTILINE,
)
# Function bodies (dollar-quoted) are code that runs later, not statements of the migration.
_BODY = re.compile(r"\$(\w*)\$.*?\$\1\$", re.DOTALL)


class MigrationError(RuntimeError):
    """A migration cannot be applied; the message names the file and the fix."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    found: list[Migration] = []
    for entry in sorted(resources.files("regapp.migrations").iterdir(), key=lambda e: e.name):
        match = re.match(r"^([0-9]{4})_([a-z0-9_]+)\.sql$", entry.name)
        if not match:
            continue
        sql = entry.read_text(encoding="utf-8")
        # Comments may say anything; only statements count.
        code = _BODY.sub("", re.sub(r"--[^\n]*", "", sql))
        destructive = _DESTRUCTIVE.search(code)
        if destructive:
            raise MigrationError(
                f"{entry.name} removes or renames something ({destructive[0]!r}); "
                "migrations only add, so the previous release keeps working after a rollback"
            )
        found.append(Migration(int(match.group(1)), match.group(2), sql))
    return found


def apply(conn: psycopg.Connection[Any], restore_point: str | None) -> list[str]:
    """Apply what is missing; the names applied. conn: the migrate role on the primary."""
    with conn.transaction():
        conn.execute("SET LOCAL synchronous_commit = on")
        conn.execute("SET LOCAL ROLE register_owner")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS register.schema_migration ("
            "version integer PRIMARY KEY, name text NOT NULL, "
            "applied_at timestamptz NOT NULL DEFAULT now(), release text NOT NULL)"
        )
        # Read only: the register's default privileges would let the app write it.
        conn.execute("REVOKE ALL ON register.schema_migration FROM register_app, register_read")
        conn.execute("GRANT SELECT ON register.schema_migration TO register_app, register_read")
        rows = conn.cursor(row_factory=tuple_row).execute(
            "SELECT version FROM register.schema_migration"
        )
        done = {row[0] for row in rows}
    todo = [m for m in available() if m.version not in done]
    if not todo:
        return []
    if restore_point:
        conn.execute("SELECT pg_create_restore_point(%s)", [restore_point[:63]])
    applied = []
    for migration in todo:
        try:
            with conn.transaction():
                conn.execute("SET LOCAL ROLE register_owner")
                conn.execute(migration.sql.encode())
                conn.execute(
                    "INSERT INTO register.schema_migration (version, name, release) "
                    "VALUES (%s, %s, %s)",
                    [migration.version, migration.name, release_id()],
                )
        except psycopg.Error as exc:
            raise MigrationError(
                f"migration {migration.version:04d}_{migration.name} failed and was rolled back: "
                f"{exc}".strip()
            ) from exc
        applied.append(f"{migration.version:04d}_{migration.name}")
    return applied
