"""Migrations only add: what a release carries is checked before it touches the register."""

from __future__ import annotations

import re

import pytest
from regapp import migrate


def test_the_shipped_migrations_are_numbered_in_order_and_only_add() -> None:
    found = migrate.available()
    assert [m.version for m in found] == list(range(1, len(found) + 1))


@pytest.mark.parametrize(
    "statement",
    [
        "DROP TABLE register.voter;",
        "ALTER TABLE register.voter DROP COLUMN sex;",
        "ALTER TABLE register.voter RENAME TO voters;",
        "ALTER TABLE register.voter RENAME COLUMN sex TO gender;",
        "TRUNCATE register.voter;",
        "DELETE FROM register.voter;",
        "drop function register.khmer_key(text);",
        "ALTER TABLE register.voter DROP registered_by;",
        "ALTER TABLE register.voter DROP CONSTRAINT voter_sex_check;",
        "ALTER TABLE register.audit_entry DISABLE TRIGGER audit_entry_append_only;",
        "ALTER TABLE register.voter ALTER COLUMN sex TYPE char(1);",
        "UPDATE register.voter SET sex = 'F';",
    ],
)
def test_a_destructive_statement_is_found(statement: str) -> None:
    assert migrate._DESTRUCTIVE.search(statement)


@pytest.mark.parametrize(
    "statement",
    [
        "-- we never DROP TABLE here\nCREATE TABLE register.x (id int);",
        "REVOKE UPDATE, DELETE, TRUNCATE ON register.audit_entry FROM PUBLIC;",
        "CREATE TRIGGER t BEFORE TRUNCATE ON register.audit_entry FOR EACH STATEMENT "
        "EXECUTE FUNCTION f();",
        "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$\nBEGIN\n  UPDATE register.x "
        "SET a = 1;\n  DELETE FROM register.y;\nEND $$;",
    ],
)
def test_additive_statements_pass(statement: str) -> None:
    code = migrate._BODY.sub("", re.sub(r"--[^\n]*", "", statement))
    assert not migrate._DESTRUCTIVE.search(code)
