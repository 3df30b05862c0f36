"""The registration rules the app applies before the register sees a submission."""

from __future__ import annotations

import datetime as dt
import unicodedata

import pytest
from regapp import validate

TODAY = dt.date(2026, 12, 4)
QUALIFYING = dt.date(2028, 7, 1)
GOOD = {
    "national_id": "010203040",
    "name_km": "សុខ សុភា",
    "name_latin": "Sok Sophea",
    "sex": "F",
    "date_of_birth": "05/03/1990",
    "commune_code": "120101",
    "village_code": "12010101",
    "polling_station": "120101-01",
}


def check(**changes: object) -> validate.Registration:
    data = {**GOOD, **changes}
    return validate.registration(data, qualifying=QUALIFYING, minimum_age=18, today=TODAY)


def refused(**changes: object) -> dict[str, str]:
    with pytest.raises(validate.Invalid) as info:
        check(**changes)
    return info.value.errors


def test_a_good_registration_passes_and_reads_day_first() -> None:
    reg = check()
    assert reg.date_of_birth == dt.date(1990, 3, 5)
    assert reg.national_id == "010203040"


@pytest.mark.parametrize("typed", ["០១០២០៣០៤០", "010 203 040", "010-203-040", "\u00a0010203040 "])
def test_national_id_in_khmer_digits_or_with_spaces_is_the_same(typed: str) -> None:
    assert check(national_id=typed).national_id == "010203040"


@pytest.mark.parametrize("typed", ["05.03.1990", "5-3-1990", "០៥/០៣/១៩៩០", "1990-03-05"])
def test_dates_in_accepted_forms(typed: str) -> None:
    assert check(date_of_birth=typed).date_of_birth == dt.date(1990, 3, 5)


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        ("31/02/1990", "does not exist"),
        ("05/03/90", "four-digit year"),
        ("05/03/2533", "Buddhist-era"),
        ("March 5 1990", "not a date"),
        ("1990/03/05", "not a date"),
        ("05/03/2015", "at least 18"),
        ("05/03/1850", "age of"),
        ("05/03/2030", "future"),
    ],
)
def test_dates_refused_with_a_reason(typed: str, says: str) -> None:
    assert says in refused(date_of_birth=typed)["date_of_birth"]


def test_the_buddhist_era_hint_gives_the_common_era_year() -> None:
    assert "1990" in refused(date_of_birth="05/03/2533")["date_of_birth"]


def test_names_are_stored_nfc_without_invisible_characters() -> None:
    decomposed = unicodedata.normalize("NFD", "សុខ សុភា")
    reg = check(name_km=decomposed.replace(" ", "\u200b \u00a0"))
    assert reg.name_km == "សុខ សុភា"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name_km", "Sok Sophea"),
        ("name_km", "ុសខ"),
        ("name_km", "សុខ ១"),
        ("name_latin", "សុខ"),
        ("name_latin", "Sok2"),
        ("sex", "X"),
        ("commune_code", "12"),
        ("village_code", "13010101"),
        ("polling_station", "130101-01"),
        ("national_id", "12345678"),
        ("national_id", "12345678A"),
    ],
)
def test_bad_fields_are_named(field: str, value: str) -> None:
    assert field in refused(**{field: value})


def test_unknown_fields_and_non_text_are_refused() -> None:
    errors = refused(colour="blue", national_id=12)
    assert set(errors) == {"colour", "national_id"}


def test_every_bad_field_is_reported_at_once() -> None:
    errors = refused(national_id="", name_km="", sex="")
    assert set(errors) == {"national_id", "name_km", "sex"}
