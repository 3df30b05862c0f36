"""Cambodia's administrative units (NCDD codes) and the lab's polling stations.

Voters point at communes, villages and polling stations, so the register must hold them before
the first registration. This module reads gazetteer files, refuses a bad file before any of it
reaches the register (a half-loaded tree is worse than none), and loads units without ever
deleting one: a voter may still point at a unit that a later gazetteer no longer lists.

Two file formats are read:

* the project's own CSV, ``code,level,name_km,name_latin,parent_code`` (see data/SOURCES.md);
* a province file of the NCDD gazetteer as NCDD publishes it: a title line, then the header
  ``Type,Code,Name (Khmer),Name (Latin),Reference,Official Note,Note (by Checker)``; the type is
  the Khmer unit word (ស្រុក/ក្រុង/ខណ្ឌ, ឃុំ/សង្កាត់, ភូមិ) and codes lose their leading zero
  (``301`` is district ``0301``). The province itself is not in such a file; it is taken from the
  shipped gazetteer.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

LEVELS = ("province", "district", "commune", "village")
CODE_LENGTH = {"province": 2, "district": 4, "commune": 6, "village": 8}
_RANK = {level: rank for rank, level in enumerate(LEVELS)}
HEADER = ("code", "level", "name_km", "name_latin", "parent_code")
NCDD_HEADER = ("type", "code", "name (khmer)", "name (latin)")
NCDD_TYPES = {
    "ខេត្ត": "province",
    "រាជធានី": "province",
    "ស្រុក": "district",
    "ក្រុង": "district",
    "ខណ្ឌ": "district",
    "ឃុំ": "commune",
    "សង្កាត់": "commune",
    "ភូមិ": "village",
}
# where each of HEADER's columns is in an NCDD file
_NCDD_COLUMNS = ((2, "Code"), (1, "Type"), (3, "Name (Khmer)"), (4, "Name (Latin)"), (2, "Code"))
SHIPPED_FILES = ("gazetteer.csv", "gazetteer-lab.csv")

_KHMER = re.compile("[\u1780-\u17ff]")
# Characters nobody can see: a name holding one would never match what a clerk types.
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b\u200e"
    "\u200f\u202a-\u202e\u2060-\u206f\ufeff]"
)
_CONTROL = re.compile("[\u0000-\u001f\u007f-\u009f]")


@dataclass(frozen=True)
class Unit:
    code: str
    level: str
    name_km: str
    name_latin: str
    parent_code: str | None


@dataclass(frozen=True)
class Station:
    code: str
    name_km: str
    name_latin: str
    commune_code: str


class GazetteerError(ValueError):
    """A gazetteer file refused; the message names file, line, column and the fix."""


@dataclass(frozen=True)
class _Row:
    unit: Unit
    line: int
    source: str
    ncdd: bool = False


def read(path: Path | str, *, known: Iterable[Unit] = ()) -> list[Unit]:
    """Every unit of one file, checked as a whole; ``known`` are units its rows may hang from.

    The whole file is refused on the first error, so a register is never loaded with part of it.
    """
    source = Path(path)
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise GazetteerError(f"{source}: cannot be read ({exc.strerror}); check the path") from exc
    return _check(_parse(data, str(source)), known=known)


def shipped(*, lab: bool = True) -> list[Unit]:
    """The gazetteer shipped in the package: real units, then (lab) the synthetic villages."""
    rows: list[_Row] = []
    for name in SHIPPED_FILES if lab else SHIPPED_FILES[:1]:
        resource = resources.files("regapp").joinpath("data", name)
        rows += _parse(resource.read_bytes(), f"regapp/data/{name}")
    return _check(rows)


def _parse(data: bytes, source: str) -> list[_Row]:
    try:
        text = data.decode("utf-8-sig")  # a BOM, as spreadsheet programs write one, is fine
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise GazetteerError(
            f"{source}: line {line}: not UTF-8 (byte {exc.start}); save the file as UTF-8"
        ) from exc
    records = list(csv.reader(io.StringIO(text, newline="")))
    # line numbers as an editor shows them: a quoted field may span lines
    reader = csv.reader(io.StringIO(text, newline=""))
    ends = [reader.line_num for _ in reader]
    starts = [1, *[end + 1 for end in ends[:-1]]]
    for index, record in enumerate(records[:6]):
        cells = tuple(c.strip().lower() for c in record[:4])
        if cells == NCDD_HEADER:
            return _parse_ncdd(records[index + 1 :], starts[index + 1 :], source)
    if not records:
        raise GazetteerError(
            f"{source}: line 1: the file is empty; start it with the header {','.join(HEADER)}"
        )
    header = tuple(c.strip() for c in records[0])
    if header != HEADER:
        raise GazetteerError(
            f"{source}: line 1, column 1: the header is {','.join(records[0])!r}; write "
            f"{','.join(HEADER)} (or use an NCDD gazetteer file with its own header)"
        )
    rows = []
    for record, line in zip(records[1:], starts[1:], strict=True):
        if not any(cell.strip() for cell in record):
            continue
        if len(record) != len(HEADER):
            raise GazetteerError(
                f"{source}: line {line}: {len(record)} columns; write exactly {len(HEADER)} "
                f"({','.join(HEADER)}), quoting any name that holds a comma"
            )
        code, level, name_km, name_latin, parent = (c.strip() for c in record)
        rows.append(_Row(Unit(code, level, name_km, name_latin, parent or None), line, source))
    return rows


def _parse_ncdd(records: Sequence[list[str]], lines: Sequence[int], source: str) -> list[_Row]:
    rows = []
    for record, line in zip(records, lines, strict=True):
        if not any(cell.strip() for cell in record):
            continue
        if len(record) < len(NCDD_HEADER):
            raise GazetteerError(
                f"{source}: line {line}: {len(record)} columns; an NCDD row "
                "has Type, Code, Name (Khmer), Name (Latin)"
            )
        kind, raw_code, name_km, name_latin = (c.strip() for c in record[:4])
        level = NCDD_TYPES.get(kind)
        if level is None:
            raise GazetteerError(
                f"{source}: line {line}, column 1 (Type): {kind!r} is not a unit type; use one "
                f"of {', '.join(NCDD_TYPES)}"
            )
        code = raw_code.zfill(CODE_LENGTH[level]) if raw_code.isdigit() else raw_code
        parent = code[:-2] if level != "province" else None
        rows.append(_Row(Unit(code, level, name_km, name_latin, parent), line, source, ncdd=True))
    provinces = {r.unit.code: r for r in _shipped_provinces()}
    present = {r.unit.code for r in rows}
    missing = sorted({r.unit.code[:2] for r in rows} - present)
    return [provinces[c] for c in missing if c in provinces] + rows


def _shipped_provinces() -> list[_Row]:
    name = SHIPPED_FILES[0]
    rows = _parse(
        resources.files("regapp").joinpath("data", name).read_bytes(), f"regapp/data/{name}"
    )
    return [r for r in rows if r.unit.level == "province"]


_Fail = Callable[[_Row, int, str], GazetteerError]


def _check(rows: Sequence[_Row], *, known: Iterable[Unit] = ()) -> list[Unit]:
    def fail(row: _Row, column: int, problem: str) -> GazetteerError:
        where = f"line {row.line}, column {column} ({HEADER[column - 1]})"
        if row.ncdd:  # the parent comes from the code, the level from the type
            number, name = _NCDD_COLUMNS[column - 1]
            where = f"line {row.line}, column {number} ({name})"
        return GazetteerError(f"{row.source}: {where}: {problem}")

    outside = {u.code: u for u in known}
    seen: dict[str, _Row] = {}
    for row in rows:
        unit = row.unit
        if unit.level not in CODE_LENGTH:
            raise fail(row, 2, f"level {unit.level!r} is unknown; use one of {', '.join(LEVELS)}")
        length = CODE_LENGTH[unit.level]
        if not (unit.code.isascii() and unit.code.isdigit() and len(unit.code) == length):
            raise fail(
                row,
                1,
                f"code {unit.code!r} is not {length} digits as a {unit.level} "
                f"code is; fix the code or the level",
            )
        if unit.code in seen:
            raise fail(
                row,
                1,
                f"code {unit.code} already given on line {seen[unit.code].line}; "
                "keep one row per code",
            )
        seen[unit.code] = row
        _check_names(row, fail)
        if unit.level == "province":
            if unit.parent_code is not None:
                raise fail(row, 5, "a province has no parent; leave parent_code empty")
            continue
        expected = unit.code[:-2]
        if unit.parent_code != expected:
            raise fail(
                row,
                5,
                f"parent_code is {unit.parent_code or 'empty'}; a code's parent is "
                f"the code without its last two digits, {expected}",
            )
    for row in rows:
        unit = row.unit
        if unit.parent_code is None:
            continue
        parent_row = seen.get(unit.parent_code)
        parent = parent_row.unit if parent_row else outside.get(unit.parent_code)
        up = LEVELS[_RANK[unit.level] - 1]
        if parent is None:
            raise fail(
                row,
                5,
                f"parent {unit.parent_code} is in neither this file nor the units "
                f"already known; add the {up} {unit.parent_code} first",
            )
        if parent.level != up:
            raise fail(
                row,
                5,
                f"parent {unit.parent_code} is a {parent.level}; a {unit.level} hangs from a {up}",
            )
    return [row.unit for row in rows]


def _check_names(row: _Row, fail: _Fail) -> None:
    unit = row.unit
    if not unit.name_km:
        raise fail(row, 3, "name_km is empty; write the name in Khmer script")
    if unicodedata.normalize("NFC", unit.name_km) != unit.name_km:
        raise fail(row, 3, "name_km is not in Unicode NFC; save it normalised (NFC)")
    if not _KHMER.search(unit.name_km):
        raise fail(
            row, 3, f"name_km {unit.name_km!r} has no Khmer character; write it in Khmer script"
        )
    for column, name in ((3, unit.name_km), (4, unit.name_latin)):
        if _INVISIBLE.search(name) or _CONTROL.search(name):
            raise fail(
                row,
                column,
                f"{HEADER[column - 1]} holds an invisible or control character; retype the name",
            )
    if not unit.name_latin:
        raise fail(row, 4, "name_latin is empty; write the name in Latin letters")


def stations(units: Iterable[Unit]) -> list[Station]:
    """One or two lab polling stations per commune, each in a school of one of its villages.

    The real station list comes from the NEC; these give every commune of the lab somewhere to
    vote, deterministically, so demos and benchmarks agree on the codes.
    """
    all_units = list(units)
    villages: dict[str, list[Unit]] = {}
    for unit in all_units:
        if unit.level == "village" and unit.parent_code is not None:
            villages.setdefault(unit.parent_code, []).append(unit)
    result = []
    for commune in sorted((u for u in all_units if u.level == "commune"), key=lambda u: u.code):
        places = sorted(villages.get(commune.code, []), key=lambda u: u.code) or [commune]
        count = min(len(places), 1 + sum(map(int, commune.code)) % 2)
        for number, place in enumerate(places[:count], start=1):
            result.append(
                Station(
                    code=f"{commune.code}-{number:02d}",
                    name_km=f"សាលាបឋមសិក្សា {place.name_km}",
                    name_latin=f"{place.name_latin} Primary School",
                    commune_code=commune.code,
                )
            )
    return result


_UNIT_COLUMNS = ("code", "level", "name_km", "name_latin", "parent_code")
_STATION_COLUMNS = ("code", "name_km", "name_latin", "commune_code")


def load(conn: Any, units: Iterable[Unit], *, update: bool = True) -> dict[str, int]:
    """Upsert units into register.admin_unit, parents first; nothing is ever deleted.

    Runs in ``conn.transaction()``: all or nothing (a savepoint when the caller already has a
    transaction open, which then commits it).
    """
    ordered = sorted(units, key=lambda u: (_RANK[u.level], u.code))
    rows = [(u.code, u.level, u.name_km, u.name_latin, u.parent_code) for u in ordered]
    return _upsert(conn, "register.admin_unit", _UNIT_COLUMNS, rows, update=update)


def load_stations(conn: Any, stations: Iterable[Station], *, update: bool = True) -> dict[str, int]:
    """Upsert polling stations (their communes must be loaded); nothing is ever deleted."""
    rows = sorted((s.code, s.name_km, s.name_latin, s.commune_code) for s in stations)
    return _upsert(conn, "register.polling_station", _STATION_COLUMNS, rows, update=update)


def _upsert(
    conn: Any,
    table: str,
    columns: Sequence[str],
    rows: Sequence[tuple[str | None, ...]],
    *,
    update: bool = True,
) -> dict[str, int]:
    """update=False adds what is missing and leaves every existing row as it is."""
    names = ", ".join(columns)
    changes = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns[1:])
    # table and column names are this module's constants, never input
    select = f"SELECT {names} FROM {table} WHERE code = ANY(%s)"  # noqa: S608
    upsert = (
        f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * len(columns))}) "  # noqa: S608
        + (f"ON CONFLICT (code) DO UPDATE SET {changes}" if update else "ON CONFLICT DO NOTHING")
    )
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(select, [[row[0] for row in rows]])
        existing = {values[0]: values for values in map(_values(columns), cur.fetchall())}
        write = [
            row
            for row in rows
            if (existing.get(row[0]) != row if update else row[0] not in existing)
        ]
        if write:
            cur.executemany(upsert, write)
    added = sum(1 for row in write if row[0] not in existing)
    return {"added": added, "updated": len(write) - added, "unchanged": len(rows) - len(write)}


def _values(columns: Sequence[str]) -> Callable[[Any], tuple[Any, ...]]:
    """A row as a tuple in ``columns`` order, whatever row factory the connection uses."""

    def convert(row: Any) -> tuple[Any, ...]:
        if isinstance(row, Mapping):
            return tuple(row[c] for c in columns)
        return tuple(row)

    return convert
