"""`regapp`: the app's own commands on app1, run as root by an operator or a release.

They connect as the migrate role (a member of the register's owner), so they work without the
web app and their changes to users are audited like every other change.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

from regapp import auth, config, gazetteer, importer, migrate, release_id


def _connect(cfg: config.Config) -> psycopg.Connection[dict[str, object]]:
    try:
        return psycopg.connect(
            cfg.dsn("migrate"),
            password=cfg.password("migrate"),
            row_factory=dict_row,
            autocommit=True,
        )
    except psycopg.OperationalError as exc:
        raise SystemExit(
            f"regapp: cannot reach the register's primary on {', '.join(cfg.hosts)}: "
            f"{str(exc).strip().splitlines()[0]}\n"
            "  check `roomctl db status` on the control node"
        ) from None


def _actor() -> str:
    return f"os:{os.environ.get('SUDO_USER') or getpass.getuser()}"


def _audit(
    conn: psycopg.Connection[dict[str, object]], action: str, new: dict[str, object]
) -> None:
    conn.execute(
        "SELECT register.audit_append(%s, NULL, %s, NULL, NULL, NULL, %s::jsonb)",
        [_actor(), action, json.dumps(new)],
    )


def _password(prompt: str) -> str:
    """From the terminal twice, or one line of stdin; never from the command line."""
    if sys.stdin.isatty():
        first = getpass.getpass(prompt)
        if first != getpass.getpass("again: "):
            raise SystemExit("regapp: the two passwords differ; nothing changed")
        return first
    return sys.stdin.readline().rstrip("\n")


def cmd_migrate(args: argparse.Namespace, cfg: config.Config) -> int:
    with _connect(cfg) as conn:
        try:
            applied = migrate.apply(conn, args.restore_point)
        except migrate.MigrationError as exc:
            print(f"regapp: {exc}", file=sys.stderr)
            return 1
    if applied:
        point = f" after restore point {args.restore_point}" if args.restore_point else ""
        print(f"applied{point}: {', '.join(applied)}")
    else:
        print("schema up to date")
    return 0


def cmd_user(args: argparse.Namespace, cfg: config.Config) -> int:
    with _connect(cfg) as conn:
        if args.action == "list":
            rows = conn.execute(
                "SELECT name, full_name, role, disabled, failed_logins, locked_until "
                "FROM register.app_user ORDER BY name"
            ).fetchall()
            for r in rows:
                state = (
                    "disabled"
                    if r["disabled"]
                    else (
                        f"locked until {r['locked_until']:%Y-%m-%d %H:%M}"
                        if r["locked_until"]
                        else "active"
                    )
                )
                print(f"{r['name']:<20} {r['role']:<11} {state:<28} {r['full_name']}")
            return 0
        row = conn.execute(
            "SELECT name FROM register.app_user WHERE name = %s", [args.name]
        ).fetchone()
        if args.action == "add":
            if row is not None:
                print(f"regapp: user {args.name} exists; use `regapp user passwd`", file=sys.stderr)
                return 1
            try:
                hashed = auth.hash_password(_password(f"password for {args.name}: "))
            except ValueError as exc:
                print(f"regapp: {exc}; nothing changed", file=sys.stderr)
                return 1
            with conn.transaction():
                try:
                    conn.execute(
                        "INSERT INTO register.app_user (name, full_name, role, "
                        "password_hash) VALUES (%s, %s, %s, %s)",
                        [args.name, args.full_name or args.name, args.role, hashed],
                    )
                except psycopg.errors.CheckViolation:
                    print(
                        "regapp: a user name is 2 to 32 lower-case letters, digits, dot, dash "
                        "or underscore, starting with a letter",
                        file=sys.stderr,
                    )
                    return 1
                _audit(conn, "user.added", {"name": args.name, "role": args.role})
            print(f"added {args.role} {args.name}")
            return 0
        if row is None:
            print(f"regapp: no user {args.name} (regapp user list)", file=sys.stderr)
            return 1
        with conn.transaction():
            if args.action == "passwd":
                try:
                    hashed = auth.hash_password(_password(f"new password for {args.name}: "))
                except ValueError as exc:
                    print(f"regapp: {exc}; nothing changed", file=sys.stderr)
                    return 1
                conn.execute(
                    "UPDATE register.app_user SET password_hash = %s, failed_logins = 0,"
                    " locked_until = NULL, password_changed_at = now() WHERE name = %s",
                    [hashed, args.name],
                )
            elif args.action == "unlock":
                conn.execute(
                    "UPDATE register.app_user SET failed_logins = 0, locked_until = NULL,"
                    " disabled = false WHERE name = %s",
                    [args.name],
                )
            elif args.action == "lock":
                conn.execute(
                    "UPDATE register.app_user SET disabled = true WHERE name = %s", [args.name]
                )
            _audit(conn, f"user.{args.action}", {"name": args.name})
        print(f"{args.action}: {args.name}")
        return 0


def cmd_gazetteer(args: argparse.Namespace, cfg: config.Config) -> int:
    try:
        units = gazetteer.read(args.file) if args.file else gazetteer.shipped(lab=args.lab)
    except gazetteer.GazetteerError as exc:
        print(f"regapp: {exc}", file=sys.stderr)
        return 1
    with _connect(cfg) as conn:
        conn.autocommit = False
        with conn.transaction():
            conn.execute("SET LOCAL ROLE register_owner")
            counts = gazetteer.load(conn, units, update=not args.missing_only)
            line = ", ".join(f"{k} {v}" for k, v in counts.items())
            if args.lab:
                stations = gazetteer.load_stations(
                    conn, gazetteer.stations(units), update=not args.missing_only
                )
                line += "; polling stations: " + ", ".join(f"{k} {v}" for k, v in stations.items())
            _audit(conn, "gazetteer.loaded", {"source": str(args.file or "shipped"), **counts})
    print(f"administrative units: {line}")
    return 0


def cmd_audit(args: argparse.Namespace, cfg: config.Config) -> int:
    with _connect(cfg) as conn:
        row = conn.execute("SELECT * FROM register.audit_verify()").fetchone() or {
            "checked": 0,
            "first_broken": 0,
            "head_hash": "",
        }
    if row["first_broken"] is not None:
        print(
            f"BROKEN: the chain holds for {row['checked']} entries and breaks at entry "
            f"{row['first_broken']}; compare with the head hashes in mgmt1's journal"
        )
        return 2
    print(f"intact: {row['checked']} entries, head {row['head_hash']}")
    return 0


def cmd_import(args: argparse.Namespace, cfg: config.Config) -> int:
    if not args.file.is_file():
        print(f"regapp: {args.file} is not a file", file=sys.stderr)
        return 1
    with _connect(cfg) as conn:
        try:
            result = importer.run(
                conn, args.file, _actor(), dry_run=args.dry_run, baseline=args.baseline
            )
        except importer.ImportError_ as exc:
            print(f"regapp: {exc}", file=sys.stderr)
            return 1
        vacuum_seconds = 0.0
        if result.committed:
            # Statistics for the planner, and the visibility map that lets the duplicate checks
            # read their indexes alone (no parallel workers: they need shared memory the lab's
            # containers do not have).
            # A page is marked all-visible only once the standby's feedback has passed the
            # import, so vacuum again (up to two minutes) until nearly every page is.
            started = time.perf_counter()
            conn.autocommit = True
            conn.execute("SET ROLE register_owner")
            for _ in range(12):
                conn.execute("VACUUM (ANALYZE, PARALLEL 0) register.voter")
                pages = conn.execute(
                    "SELECT relpages, relallvisible FROM pg_class "
                    "WHERE oid = 'register.voter'::regclass"
                ).fetchone()
                if pages and int(str(pages["relallvisible"])) >= 0.95 * int(str(pages["relpages"])):
                    break
                time.sleep(10)
            vacuum_seconds = time.perf_counter() - started
    what = (
        "baseline (rolled back)"
        if args.baseline
        else ("dry run (rolled back)" if args.dry_run else "imported")
    )
    print(
        json.dumps(
            {
                "what": what,
                "rows": result.rows,
                "copy_seconds": round(result.copy_seconds, 2),
                "index_seconds": round(result.index_seconds, 2),
                "vacuum_seconds": round(vacuum_seconds, 2),
                "rows_per_second": round(result.rate),
                "sha256": result.sha256,
            }
        )
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="regapp", description=__doc__)
    parser.add_argument(
        "--config", type=Path, help=f"default: $REGAPP_CONFIG or {config.DEFAULT_PATH}"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("migrate", help="apply the schema migrations this release carries")
    p.add_argument("--restore-point", help="name of the restore point taken first")
    p = sub.add_parser("user", help="manage the app's users")
    p.add_argument("action", choices=["add", "list", "passwd", "lock", "unlock"])
    p.add_argument("name", nargs="?")
    p.add_argument("--role", choices=auth.ROLES, default="clerk")
    p.add_argument("--full-name")
    p = sub.add_parser("gazetteer", help="load administrative units (the shipped ones, or FILE)")
    p.add_argument("file", nargs="?", type=Path, help="an official gazetteer CSV")
    p.add_argument(
        "--lab",
        action="store_true",
        help="the lab's synthetic villages and polling stations too (never in a real room)",
    )
    p.add_argument(
        "--missing-only",
        action="store_true",
        help="add what is missing, change nothing that exists (what a release runs)",
    )
    sub.add_parser("audit", help="verify the audit trail's hash chain")
    p = sub.add_parser("import", help="bulk-load voters from a COPY text file, all or nothing")
    p.add_argument("file", type=Path, help="tab-separated: " + ", ".join(importer.COLUMNS))
    p.add_argument("--dry-run", action="store_true", help="check every row, then roll back")
    p.add_argument(
        "--baseline",
        action="store_true",
        help="time a bare COPY of the file (no match keys), then roll back",
    )
    sub.add_parser("version", help="the release this command belongs to")
    args = parser.parse_args(argv)
    if args.command == "version":
        print(release_id())
        return 0
    if args.command == "user" and args.action != "list" and not args.name:
        parser.error(f"user {args.action} needs a NAME")
    try:
        cfg = config.load(args.config)
        handler = {
            "migrate": cmd_migrate,
            "user": cmd_user,
            "gazetteer": cmd_gazetteer,
            "audit": cmd_audit,
            "import": cmd_import,
        }[args.command]
        return handler(args, cfg)
    except config.ConfigError as exc:
        print(f"regapp: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
