"""The shipped gazetteer, the file checks, the lab's stations and the upsert (on a fake DB)."""

from __future__ import annotations

import unicodedata
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

import pytest
from regapp import gazetteer
from regapp.gazetteer import GazetteerError, Station, Unit

PROVINCES = {
    "01": "Banteay Meanchey",
    "02": "Battambang",
    "03": "Kampong Cham",
    "04": "Kampong Chhnang",
    "05": "Kampong Speu",
    "06": "Kampong Thom",
    "07": "Kampot",
    "08": "Kandal",
    "09": "Koh Kong",
    "10": "Kratie",
    "11": "Mondul Kiri",
    "12": "Phnom Penh",
    "13": "Preah Vihear",
    "14": "Prey Veng",
    "15": "Pursat",
    "16": "Ratanak Kiri",
    "17": "Siemreap",
    "18": "Preah Sihanouk",
    "19": "Stung Treng",
    "20": "Svay Rieng",
    "21": "Takeo",
    "22": "Oddar Meanchey",
    "23": "Kep",
    "24": "Pailin",
    "25": "Tboung Khmum",
}
HEADER = "code,level,name_km,name_latin,parent_code\n"
GOOD = HEADER + (
    "12,province,ភ្នំពេញ,Phnom Penh,\n"
    "1201,district,ចំការមន,Chamkar Mon,12\n"
    "120101,commune,ទន្លេបាសាក់,Tonle Basak,1201\n"
    "12010101,village,ភូមិ១,Phum Muoy,120101\n"
)


@pytest.fixture(scope="module")
def units() -> list[Unit]:
    return gazetteer.shipped()


def write(tmp_path: Path, text: str, name: str = "units.csv", bom: bool = False) -> Path:
    path = tmp_path / name
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode("utf-8"))
    return path


def test_all_25_provinces_with_their_codes_and_names(units: list[Unit]) -> None:
    provinces = {u.code: u for u in units if u.level == "province"}
    assert {code: u.name_latin for code, u in provinces.items()} == PROVINCES
    assert provinces["12"].name_km == "ភ្នំពេញ"
    assert provinces["25"].name_km == "ត្បូងឃ្មុំ"
    assert provinces["01"].name_km == "បន្ទាយមានជ័យ"
    assert all(u.parent_code is None for u in provinces.values())


def test_every_province_has_districts_and_at_least_two_communes(units: list[Unit]) -> None:
    levels = Counter(u.level for u in units)
    assert levels["district"] == 208 and levels["commune"] == 1652
    communes = Counter(u.code[:2] for u in units if u.level == "commune")
    districts = Counter(u.code[:2] for u in units if u.level == "district")
    assert set(communes) == set(PROVINCES) == set(districts)
    assert min(communes.values()) >= 2
    # the districts of the 2022-2023 reforms carry their communes
    for district in ("0509", "0510", "0709", "0812", "0813", "1007"):
        assert any(u.parent_code == district for u in units), district


def test_names_are_khmer_script_in_nfc(units: list[Unit]) -> None:
    for unit in units:
        assert unit.name_km == unicodedata.normalize("NFC", unit.name_km), unit
        assert any("\u1780" <= ch <= "\u17ff" for ch in unit.name_km), unit
        assert unit.name_latin.strip() == unit.name_latin != "", unit


def test_lab_villages_follow_their_rule(units: list[Unit]) -> None:
    communes = {u.code: u for u in units if u.level == "commune"}
    villages = [u for u in units if u.level == "village"]
    assert len(villages) == 2 * len(communes)
    for village in villages:
        commune = communes[village.parent_code or ""]
        assert village.code[:6] == commune.code and village.code[6:] in ("91", "92")
        assert village.name_latin == f"Lab Village {village.code}"
        assert village.name_km.endswith("ជើង" if village.code.endswith("91") else "ត្បូង")
        assert village.name_km.startswith(commune.name_km)


def test_shipped_order_is_parents_first(units: list[Unit]) -> None:
    seen: set[str] = set()
    for unit in units:
        assert unit.parent_code is None or unit.parent_code in seen, unit
        seen.add(unit.code)


def test_read_a_good_file_with_or_without_bom(tmp_path: Path) -> None:
    for bom in (False, True):
        read = gazetteer.read(write(tmp_path, GOOD, bom=bom))
        assert [u.code for u in read] == ["12", "1201", "120101", "12010101"]
        assert read[0] == Unit("12", "province", "ភ្នំពេញ", "Phnom Penh", None)
        assert read[3].parent_code == "120101"


def test_read_accepts_parents_given_as_known(tmp_path: Path, units: list[Unit]) -> None:
    path = write(tmp_path, HEADER + "12010191,village,ថ្មី,Thmei,120101\n".replace("91,", "93,"))
    with pytest.raises(GazetteerError, match="add the commune 120101 first"):
        gazetteer.read(path)
    assert [u.code for u in gazetteer.read(path, known=units)] == ["12010193"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("code,level,name\n", "line 1, column 1: the header is"),
        (HEADER + "12,city,ភ្នំពេញ,Phnom Penh,\n", r"line 2, column 2 \(level\): level 'city'"),
        (HEADER + "123,province,ភ្នំពេញ,Phnom Penh,\n", r"line 2, column 1 \(code\): code '123'"),
        (
            GOOD + "1201,district,ចំការមន,Chamkar Mon,12\n",
            r"line 6, column 1 \(code\): code 1201 already given on line 3",
        ),
        (
            HEADER + "1201,district,ចំការមន,Chamkar Mon,12\n",
            r"line 2, column 5 \(parent_code\): parent 12 is in neither",
        ),
        (
            HEADER + "12,province,ភ្នំពេញ,Phnom Penh,\n1201,district,ចំការមន,Chamkar Mon,13\n",
            "a code's parent is the code without its last two digits, 12",
        ),
        (
            HEADER + "12,province,ភ្នំពេញ,Phnom Penh,\n1201,district,,Chamkar Mon,12\n",
            r"line 3, column 3 \(name_km\): name_km is empty",
        ),
        (HEADER + "12,province,Phnom Penh,Phnom Penh,\n", "has no Khmer character"),
        (HEADER + "12,province,ភ្នំ\u200bពេញ,Phnom Penh,\n", "invisible or control character"),
        (HEADER + "12,province,ភ្នំពេញ,,\n", r"column 4 \(name_latin\): name_latin is empty"),
        (HEADER + "12,province,ភ្នំពេញ,Phnom Penh,01\n", "a province has no parent"),
        (HEADER + "12,province,ភ្នំពេញ\n", "line 2: 3 columns; write exactly 5"),
    ],
)
def test_read_refuses_a_bad_file_naming_line_column_and_fix(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(GazetteerError, match=expected) as refused:
        gazetteer.read(path)
    assert str(path) in str(refused.value)


def test_read_refuses_a_decomposed_khmer_name(tmp_path: Path) -> None:
    # Khmer has no canonical decompositions, so a Latin accent stands in for a decomposed name
    decomposed = unicodedata.normalize("NFD", "ភ្នំពេញ é")
    with pytest.raises(GazetteerError, match="not in Unicode NFC"):
        gazetteer.read(write(tmp_path, HEADER + f"12,province,{decomposed},Phnom Penh,\n"))


def test_read_refuses_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(HEADER.encode() + "12,province,x,Phnom P\xe9nh,\n".encode("latin-1"))
    with pytest.raises(GazetteerError, match="line 2: not UTF-8"):
        gazetteer.read(path)


def test_read_an_ncdd_province_file(tmp_path: Path) -> None:
    text = (
        '"List of Gazetter Code for ""Kampong Cham""",,,,,,\n'
        ",,,,,,\n"
        'Type,Code,"Name (Khmer)","Name (Latin)",Reference,"Official Note","Note (by Checker)"\n'
        'ស្រុក,301,បាធាយ,Batheay,"ប្រកាសលេខ ៤៩៣ប្រ.ក",,\n'
        'ឃុំ,30101,បាធាយ,Batheay,"ប្រកាសលេខ ៤៩៣ ប្រ.ក",,\n'
        'ភូមិ,3010101,ស្វាយពក,"Svay Pok","ប្រកាសលេខ ៤៩៣ ប្រ.ក",,\n'
        'ភូមិ,3010403,"ប្រសូត្រ ""ក""","Prasoutr Ka","",,\n'
    )
    with pytest.raises(GazetteerError, match=r"line 7, column 2 \(Code\): parent 030104"):
        gazetteer.read(write(tmp_path, text, "KPC.csv"))
    read = gazetteer.read(write(tmp_path, text.rsplit("ភូមិ,3010403", 1)[0], "KPC.csv", bom=True))
    assert [(u.code, u.level, u.parent_code) for u in read] == [
        ("03", "province", None),
        ("0301", "district", "03"),
        ("030101", "commune", "0301"),
        ("03010101", "village", "030101"),
    ]
    assert read[3].name_km == "ស្វាយពក" and read[3].name_latin == "Svay Pok"


def test_read_an_ncdd_file_with_an_unknown_type(tmp_path: Path) -> None:
    text = "Type,Code,Name (Khmer),Name (Latin)\nតំបន់,301,បាធាយ,Batheay\n"
    with pytest.raises(GazetteerError, match=r"line 2, column 1 \(Type\): 'តំបន់'"):
        gazetteer.read(write(tmp_path, text))


def test_stations_one_or_two_per_commune_in_a_village_school(units: list[Unit]) -> None:
    stations = gazetteer.stations(units)
    per_commune = Counter(s.commune_code for s in stations)
    communes = [u for u in units if u.level == "commune"]
    assert set(per_commune) == {u.code for u in communes}
    assert set(per_commune.values()) == {1, 2}
    first = next(s for s in stations if s.commune_code == "120101")
    assert first == Station(
        "120101-01", "សាលាបឋមសិក្សា ទន្លេបាសាក់ជើង", "Lab Village 12010191 Primary School", "120101"
    )
    assert len({s.code for s in stations}) == len(stations)
    assert gazetteer.stations(units) == stations


def test_stations_of_a_commune_without_villages_are_named_after_it() -> None:
    commune = Unit("120101", "commune", "ទន្លេបាសាក់", "Tonle Basak", "1201")
    assert gazetteer.stations([commune])[0].name_latin == "Tonle Basak Primary School"


class FakeCursor:
    def __init__(self, db: FakeDatabase, dict_rows: bool):
        self.db, self.dict_rows = db, dict_rows
        self.result: list[Any] = []

    def __enter__(self) -> FakeCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def execute(self, sql: str, params: list[Any]) -> None:
        assert sql.startswith("SELECT") and "= ANY(%s)" in sql
        table = self.db.table(sql)
        columns = self.db.columns[table]
        rows = [table_row for code, table_row in self.db.tables[table].items() if code in params[0]]
        self.result = [dict(zip(columns, r, strict=True)) if self.dict_rows else r for r in rows]

    def fetchall(self) -> list[Any]:
        return self.result

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        assert sql.startswith("INSERT INTO") and "ON CONFLICT (code) DO UPDATE" in sql
        table = self.db.table(sql)
        for row in rows:
            if table == "register.admin_unit" and row[4] is not None:
                assert row[4] in self.db.tables[table], f"parent of {row[0]} not loaded yet"
            self.db.tables[table][row[0]] = tuple(row)
        self.db.writes += len(rows)


class FakeDatabase:
    """Enough of a psycopg connection for load(): one transaction, SELECT and executemany."""

    columns: ClassVar[dict[str, tuple[str, ...]]] = {
        "register.admin_unit": ("code", "level", "name_km", "name_latin", "parent_code"),
        "register.polling_station": ("code", "name_km", "name_latin", "commune_code"),
    }

    def __init__(self, dict_rows: bool = False):
        self.tables: dict[str, dict[str, tuple[Any, ...]]] = {t: {} for t in self.columns}
        self.dict_rows, self.writes, self.transactions = dict_rows, 0, 0

    @staticmethod
    def table(sql: str) -> str:
        return next(t for t in FakeDatabase.columns if t in sql)

    def cursor(self) -> FakeCursor:
        return FakeCursor(self, self.dict_rows)

    def transaction(self) -> FakeDatabase:
        self.transactions += 1
        return self

    def __enter__(self) -> FakeDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


@pytest.mark.parametrize("dict_rows", [False, True])
def test_load_upserts_parents_first_and_counts(units: list[Unit], dict_rows: bool) -> None:
    db = FakeDatabase(dict_rows)
    children_first = sorted(units, key=lambda u: -len(u.code))
    assert gazetteer.load(db, children_first) == {"added": len(units), "updated": 0, "unchanged": 0}
    assert len(db.tables["register.admin_unit"]) == len(units)
    db.writes = 0
    assert gazetteer.load(db, units) == {"added": 0, "updated": 0, "unchanged": len(units)}
    assert db.writes == 0
    renamed = Unit("120101", "commune", "ទន្លេបាសាក់", "Tonle Bassac", "1201")
    extra = Unit("12010193", "village", "ថ្មី", "Thmei", "120101")
    assert gazetteer.load(db, [renamed, extra]) == {"added": 1, "updated": 1, "unchanged": 0}
    assert db.tables["register.admin_unit"]["120101"][3] == "Tonle Bassac"


def test_load_never_deletes(units: list[Unit]) -> None:
    db = FakeDatabase()
    gazetteer.load(db, units)
    assert gazetteer.load(db, units[:25]) == {"added": 0, "updated": 0, "unchanged": 25}
    assert len(db.tables["register.admin_unit"]) == len(units)


def test_load_stations(units: list[Unit]) -> None:
    db = FakeDatabase(dict_rows=True)
    gazetteer.load(db, units)
    stations = gazetteer.stations(units)
    assert gazetteer.load_stations(db, stations) == {
        "added": len(stations),
        "updated": 0,
        "unchanged": 0,
    }
    assert gazetteer.load_stations(db, stations) == {
        "added": 0,
        "updated": 0,
        "unchanged": len(stations),
    }
    assert db.transactions == 3
