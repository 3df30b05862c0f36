"""Connections to the register: writes to whichever host is primary, over TLS as the app's role."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from regapp.config import Config


class Unavailable(RuntimeError):
    """The register cannot be reached; the message says which hosts were tried."""


class Register:
    """One small pool per process (gunicorn worker) for the app's role."""

    def __init__(self, config: Config, role: str = "app"):
        self.config = config
        self.role = role
        self._pool: ConnectionPool | None = None

    def _open(self) -> ConnectionPool:
        if self._pool is None:
            password = self.config.password(self.role)
            self._pool = ConnectionPool(
                self.config.dsn(self.role),
                kwargs={"password": password, "row_factory": dict_row, "autocommit": False},
                min_size=1,
                max_size=2,
                open=False,
                timeout=5,
                check=ConnectionPool.check_connection,
                name=f"regapp-{self.role}",
            )
            self._pool.open(wait=False)
        return self._pool

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Cursor[dict[str, Any]]]:
        try:
            with self._open().connection() as conn, conn.transaction(), conn.cursor() as cur:
                yield cur  # type: ignore[misc]
        except (psycopg.OperationalError, TimeoutError) as exc:
            # A switchover closes the old primary's connections; the next call reconnects.
            raise Unavailable(
                f"the register does not answer on {', '.join(self.config.hosts)}: "
                f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
            ) from exc

    def call(self, function: str, *args: object) -> Any:
        """SELECT register.function(args) in one transaction; the single value it returns."""
        marks = ", ".join(["%s"] * len(args))
        with self.transaction() as cur:
            cur.execute(
                f"SELECT register.{function}({marks}) AS result",  # function names are ours
                [json.dumps(a) if isinstance(a, dict) else a for a in args],
            )
            row = cur.fetchone()
        return None if row is None else row["result"]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
