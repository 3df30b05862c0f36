"""Synthetic voters: deterministic, plausible, consistent, and near-duplicates that say so."""

from __future__ import annotations

import datetime as dt
import itertools
import unicodedata
from collections import Counter

import pytest
from regapp import gazetteer, synthetic
from regapp.gazetteer import Station, Unit
from regapp.synthetic import Voter

QUALIFYING = dt.date(2028, 7, 1)


@pytest.fixture(scope="module")
def units() -> list[Unit]:
    return gazetteer.shipped()


@pytest.fixture(scope="module")
def stations(units: list[Unit]) -> list[Station]:
    return gazetteer.stations(units)


@pytest.fixture(scope="module")
def crowd(units: list[Unit], stations: list[Station]) -> list[Voter]:
    return list(
        synthetic.voters(20_000, seed=7, units=units, stations=stations, near_duplicate_share=0.05)
    )


def age(born: dt.date, on: dt.date = QUALIFYING) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def test_same_seed_same_voters_other_seed_others(
    units: list[Unit], stations: list[Station]
) -> None:
    def run(seed: int) -> list[Voter]:
        return list(synthetic.voters(500, seed=seed, units=units, stations=stations))

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_national_ids_nine_digits_unique_and_not_sequential(crowd: list[Voter]) -> None:
    ids = [v.national_id for v in crowd]
    assert all(len(i) == 9 and i.isdigit() for i in ids)
    assert len(set(ids)) == len(ids)
    steps = Counter(abs(int(a) - int(b)) for a, b in itertools.pairwise(ids))
    assert steps.most_common(1)[0][0] > 1000
    assert ids[0] == synthetic.national_id(1)


def test_national_id_is_a_permutation_so_runs_can_follow_each_other() -> None:
    first = {synthetic.national_id(n) for n in range(1, 50_001)}
    second = {synthetic.national_id(n) for n in range(50_001, 100_001)}
    assert len(first) == len(second) == 50_000 and not first & second


def test_first_id_continues_the_counter(units: list[Unit], stations: list[Station]) -> None:
    later = next(synthetic.voters(1, seed=1, units=units, stations=stations, first_id=1001))
    assert later.national_id == synthetic.national_id(1001)


def test_names_are_real_khmer_family_then_given(crowd: list[Voter]) -> None:
    families = {km: la for km, la in synthetic.FAMILY_NAMES}
    given = {km: (la, sex) for km, la, sex in synthetic.GIVEN_NAMES}
    for voter in crowd:
        if voter.near_duplicate_kind is not None:
            continue
        family_km, given_km = voter.name_km.split(" ", 1)
        assert voter.name_latin == f"{families[family_km]} {given[given_km][0]}"
        assert given[given_km][1] in (voter.sex, "U")
        assert voter.name_km == unicodedata.normalize("NFC", voter.name_km)


def test_name_lists_are_large_and_spelt_with_subscripts() -> None:
    assert len({la for _, la in synthetic.FAMILY_NAMES}) >= 60
    assert len({la for _, la, _ in synthetic.GIVEN_NAMES}) >= 150
    assert {sex for _, _, sex in synthetic.GIVEN_NAMES} == {"F", "M", "U"}
    everything = [km for km, _ in synthetic.FAMILY_NAMES] + [
        km for km, _, _ in synthetic.GIVEN_NAMES
    ]
    assert all(all("\u1780" <= ch <= "\u17dd" or ch == " " for ch in km) for km in everything)
    assert sum(synthetic.COENG in km for km in everything) >= 40
    for km, la in (("ស្រី", "Srey"), ("សុខ", "Sok"), ("ចាន់", "Chan"), ("គឹម", "Kim")):
        assert (km, la) in synthetic.FAMILY_NAMES
    for km, la in (("ពិសិដ្ឋ", "Piseth"), ("ច័ន្ទ", "Chan"), ("ស្រីពៅ", "Srey Pov")):
        assert any(g[:2] == (km, la) for g in synthetic.GIVEN_NAMES)


def test_ages_18_to_95_skewed_young(crowd: list[Voter]) -> None:
    ages = [age(v.date_of_birth) for v in crowd]
    assert min(ages) >= 18 and max(ages) <= 95
    young = sum(18 <= a < 40 for a in ages)
    old = sum(a >= 60 for a in ages)
    assert young > 0.45 * len(ages) and old < 0.2 * len(ages)


def test_ages_hold_at_the_edges_and_on_29_february(
    units: list[Unit], stations: list[Station]
) -> None:
    qualifying = dt.date(2028, 2, 29)
    people = list(
        synthetic.voters(3000, seed=3, units=units, stations=stations, qualifying_date=qualifying)
    )
    assert all(18 <= age(v.date_of_birth, qualifying) <= 95 for v in people)


def test_sexes_both(crowd: list[Voter]) -> None:
    sexes = Counter(v.sex for v in crowd)
    assert set(sexes) == {"F", "M"} and abs(sexes["F"] - sexes["M"]) < 0.1 * len(crowd)


def test_addresses_consistent_and_every_province_votes(
    crowd: list[Voter], units: list[Unit], stations: list[Station]
) -> None:
    parent = {u.code: u.parent_code for u in units}
    station_commune = {s.code: s.commune_code for s in stations}
    for voter in crowd:
        assert parent[voter.village_code] == voter.commune_code
        assert station_commune[voter.polling_station] == voter.commune_code
    provinces = Counter(v.commune_code[:2] for v in crowd)
    assert len(provinces) == 25
    assert provinces["12"] > provinces["23"]  # Phnom Penh outnumbers Kep


def test_even_25_voters_cover_every_province(units: list[Unit], stations: list[Station]) -> None:
    people = synthetic.voters(25, seed=9, units=units, stations=stations, near_duplicate_share=0)
    assert len({v.commune_code[:2] for v in people}) == 25


def test_near_duplicates_of_every_kind_point_back(crowd: list[Voter]) -> None:
    copies = [v for v in crowd if v.near_duplicate_of is not None]
    assert 0.03 * len(crowd) < len(copies) < 0.07 * len(crowd)
    assert set(Counter(v.near_duplicate_kind for v in copies)) == set(synthetic.KINDS)
    for copy in copies:
        original = crowd[copy.near_duplicate_of or 0]
        assert copy.near_duplicate_of is not None and copy.near_duplicate_of < crowd.index(copy)
        assert original.near_duplicate_of is None
        assert copy.national_id != original.national_id and copy.sex == original.sex
        changed = {
            f
            for f in ("name_km", "name_latin", "date_of_birth", "commune_code")
            if getattr(copy, f) != getattr(original, f)
        }
        kind = copy.near_duplicate_kind
        if kind == "latin_spelling":
            assert changed == {"name_latin"}
        elif kind == "khmer_invisible":
            assert changed == {"name_km"}
            assert synthetic.clean(copy.name_km).replace(" ", "") == original.name_km.replace(
                " ", ""
            )
        elif kind == "khmer_spelling":
            assert changed == {"name_km"}
            assert synthetic.clean(copy.name_km) == copy.name_km
        elif kind == "other_commune":
            assert changed == {"commune_code"}
        else:
            assert kind == "other_birth_date"
            assert "date_of_birth" in changed and changed <= {"date_of_birth", "name_latin"}
            assert copy.commune_code == original.commune_code


def test_no_near_duplicates_when_the_share_is_zero(
    units: list[Unit], stations: list[Station]
) -> None:
    people = synthetic.voters(2000, seed=1, units=units, stations=stations, near_duplicate_share=0)
    assert all(v.near_duplicate_of is None for v in people)


def test_spelling_variants() -> None:
    assert "Sopheap" in synthetic.latin_variants("Sophea")
    assert "Chay" in synthetic.latin_variants("Chhay")
    assert all(v != "Sok" for v in synthetic.latin_variants("Sok"))
    assert "កណ្តាល" in synthetic.khmer_variants("កណ្ដាល")  # subscript DA typed as TA
    assert "សី" in synthetic.khmer_variants("ស្រី")  # the subscript dropped
    assert synthetic.khmer_variants("សុខ")


def test_copy_rows_text_format(units: list[Unit], stations: list[Station]) -> None:
    voter = next(synthetic.voters(1, seed=1, units=units, stations=stations))
    line = next(synthetic.copy_rows([voter]))
    assert line.endswith("\n") and line.count("\t") == 7
    assert line.rstrip("\n").split("\t") == [
        voter.national_id,
        voter.name_km,
        voter.name_latin,
        voter.sex,
        voter.date_of_birth.isoformat(),
        voter.commune_code,
        voter.village_code,
        voter.polling_station,
    ]


def test_copy_rows_escapes_what_copy_would_misread() -> None:
    odd = Voter(
        "000000001",
        "ក\\ខ",
        "A\tB\nC\rD",
        "F",
        dt.date(2000, 1, 2),
        "120101",
        "12010191",
        "120101-01",
    )
    assert next(synthetic.copy_rows([odd])) == (
        "000000001\tក\\\\ខ\tA\\tB\\nC\\rD\tF\t2000-01-02\t120101\t12010191\t120101-01\n"
    )


def test_copy_rows_cleans_invisible_characters_unless_raw() -> None:
    typed = Voter(
        "000000002",
        "សុខ\u00a0សុភា\u200b",
        "Sok Sophea",
        "F",
        dt.date(2000, 1, 2),
        "120101",
        "12010191",
        "120101-01",
        1,
        "khmer_invisible",
    )
    assert next(synthetic.copy_rows([typed])).split("\t")[1] == "សុខ សុភា"
    assert next(synthetic.copy_rows([typed], raw=True)).split("\t")[1] == "សុខ\u00a0សុភា\u200b"


def test_fast_constructor_makes_ordinary_voters(units: list[Unit], stations: list[Station]) -> None:
    voter = next(synthetic.voters(1, seed=5, units=units, stations=stations))
    rebuilt = Voter(
        voter.national_id,
        voter.name_km,
        voter.name_latin,
        voter.sex,
        voter.date_of_birth,
        voter.commune_code,
        voter.village_code,
        voter.polling_station,
    )
    assert voter == rebuilt and hash(voter) == hash(rebuilt)
    with pytest.raises(AttributeError):
        voter.sex = "M"  # type: ignore[misc]


def test_refuses_units_without_villages_or_stations(units: list[Unit]) -> None:
    with pytest.raises(ValueError, match="no commune has both a village and a polling station"):
        next(
            synthetic.voters(
                1, seed=1, units=[u for u in units if u.level != "village"], stations=[]
            )
        )
    with pytest.raises(ValueError, match="near_duplicate_share"):
        next(synthetic.voters(1, seed=1, units=units, stations=[], near_duplicate_share=1.5))


def test_command_line_writes_copy_lines(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert synthetic.main(["--count", "30", "--seed", "4", "--near-duplicates", "0.1"]) == 0
    lines = capsysbinary.readouterr().out.decode().splitlines()
    assert len(lines) == 30 and all(line.count("\t") == 7 for line in lines)
    assert len({line.split("\t")[0] for line in lines}) == 30
