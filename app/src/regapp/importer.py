"""Bulk import of voters (an existing register, or synthetic voters for benchmarks).

One transaction: the register takes no registrations while it runs, and a bad row anywhere
leaves the register as it was, with the row's line named. Into an empty register the match-key
indexes are built once after the rows, which is far faster than maintaining them row by row.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from regapp import validate

COLUMNS = validate.FIELDS
# Built after the rows when the register is empty (their definitions are read from the catalog).
KEY_INDEXES = ("voter_birth_keys", "voter_commune_sex_key", "voter_km_trgm", "voter_latin_trgm")
# Checked once for all rows (one join each) instead of row by row, when the register is empty.
FOREIGN_KEYS = ("voter_commune_code_fkey", "voter_village_code_fkey", "voter_polling_station_fkey")
BLOCK = 1 << 20


class ImportError_(RuntimeError):
    """The file cannot be imported; nothing was stored. The message names the line and fix."""


@dataclass(frozen=True)
class Result:
    rows: int
    copy_seconds: float
    index_seconds: float
    sha256: str
    committed: bool

    @property
    def rate(self) -> float:
        total = self.copy_seconds + self.index_seconds
        return self.rows / total if total else 0.0


def _copy(cur: psycopg.Cursor[Any], table: str, path: Path, digest: Any) -> None:
    columns = ", ".join(COLUMNS)
    with path.open("rb") as source, cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        while block := source.read(BLOCK):
            digest.update(block)
            copy.write(block)


def run(
    conn: psycopg.Connection[Any],
    path: Path,
    actor: str,
    *,
    dry_run: bool = False,
    baseline: bool = False,
) -> Result:
    """Import path (COPY text format, COLUMNS order); baseline: see cli `import --baseline`."""
    digest = hashlib.sha256()
    cur = conn.cursor(row_factory=tuple_row)
    conn.autocommit = False
    index_seconds = 0.0
    try:
        cur.execute("SET LOCAL ROLE register_owner")
        cur.execute("SET LOCAL maintenance_work_mem = '512MB'")
        cur.execute("SET LOCAL synchronous_commit = on")
        if baseline:
            # The same columns, identity, checks and unique national ID, but no match keys, key
            # indexes or references: what a bare COPY of these rows costs.
            cur.execute(
                "CREATE TEMP TABLE import_baseline (LIKE register.voter INCLUDING "
                "DEFAULTS INCLUDING IDENTITY INCLUDING CONSTRAINTS) ON COMMIT DROP"
            )
            cur.execute(
                "ALTER TABLE import_baseline ADD PRIMARY KEY (id), ADD UNIQUE (national_id)"
            )
            started = time.perf_counter()
            _copy(cur, "import_baseline", path, digest)
            copy_seconds = time.perf_counter() - started
            loaded = cur.execute("SELECT count(*) FROM import_baseline").fetchone()
            conn.rollback()
            return Result(
                int(loaded[0]) if loaded else 0, copy_seconds, 0.0, digest.hexdigest(), False
            )
        cur.execute("LOCK TABLE register.voter IN SHARE ROW EXCLUSIVE MODE")
        empty = cur.execute("SELECT NOT EXISTS (SELECT 1 FROM register.voter)").fetchone()
        rebuild: list[str] = []
        if not (empty and empty[0]):
            # Rows loaded in bulk skip the duplicate rules; only a new register may take them.
            raise ImportError_(
                f"{path}: the register already holds voters, and an import would skip the "
                "duplicate checks; import only into a new register, and register the others "
                "through the app"
            )
        if empty and empty[0]:
            cur.execute(
                "SELECT indexdef FROM pg_indexes WHERE schemaname = 'register' "
                "AND indexname = ANY(%s)",
                [list(KEY_INDEXES)],
            )
            rebuild = [row[0] for row in cur.fetchall()]
            cur.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = 'register.voter'::regclass AND conname = ANY(%s)",
                [list(FOREIGN_KEYS)],
            )
            rebuild += [
                f"ALTER TABLE register.voter ADD CONSTRAINT {name} {definition}"
                for name, definition in cur.fetchall()
            ]
            for name in KEY_INDEXES:
                cur.execute(f"DROP INDEX IF EXISTS register.{name}")
            for name in FOREIGN_KEYS:
                cur.execute(f"ALTER TABLE register.voter DROP CONSTRAINT IF EXISTS {name}")
        counted = cur.execute("SELECT count(*) FROM register.voter").fetchone()
        before = int(counted[0]) if counted else 0
        started = time.perf_counter()
        _copy(cur, "register.voter", path, digest)
        copy_seconds = time.perf_counter() - started
        started = time.perf_counter()
        for definition in rebuild:
            cur.execute(definition)
        index_seconds = time.perf_counter() - started
        counted = cur.execute("SELECT count(*) FROM register.voter").fetchone()
        rows = (int(counted[0]) if counted else 0) - before
        result = Result(rows, copy_seconds, index_seconds, digest.hexdigest(), not dry_run)
        cur.execute(
            "SELECT register.audit_append(%s, NULL, 'voters.imported', NULL, NULL, NULL, %s)",
            [
                actor,
                json.dumps(
                    {"file": path.name, "sha256": result.sha256, "rows": rows, "dry_run": dry_run}
                ),
            ],
        )
        if dry_run:
            conn.rollback()
        else:
            conn.commit()
        return result
    except psycopg.Error as exc:
        conn.rollback()
        diag = exc.diag
        where = f" ({diag.context.strip().splitlines()[0]})" if diag.context else ""
        raise ImportError_(
            f"{path}: {diag.message_primary or exc}{where}; nothing was imported. Fix the line "
            "named and run the import again"
        ) from exc
