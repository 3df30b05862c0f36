"""What a registration must look like before the register sees it.

Every refusal names its field and says what to type instead. The register repeats the checks
that protect stored data (national ID format, clean names, existing communes), so a client that
skips this module still cannot store bad rows.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass

KHMER_DIGITS = str.maketrans("០១២៣៤៥៦៧៨៩", "0123456789")
# Invisible characters dropped from every field; the joiners stay in names (they change how
# Khmer renders) but never count as content.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|"
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b\u200e"
    "\u200f\u202a-\u202e\u2060-\u206f\ufeff]"
)
_SPACES = re.compile(r"[\s\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+")
_KHMER_NAME = re.compile("^[\u1780-\u17dd\u200c\u200d ]+$")
_KHMER_BASE = re.compile("[\u1780-\u17b3]")
_LATIN_NAME = re.compile(r"^[A-Za-z\u00c0-\u024f][A-Za-z\u00c0-\u024f' .-]*$")
_NATIONAL_ID = re.compile(r"^[0-9]{9}$")
_CODE = re.compile(r"^[0-9]{6}$")
_VILLAGE = re.compile(r"^[0-9]{8}$")
_STATION = re.compile(r"^[0-9]{6}-[0-9]{2}$")
BUDDHIST_ERA_OFFSET = 543
OLDEST_AGE = 120

FIELDS = (
    "national_id",
    "name_km",
    "name_latin",
    "sex",
    "date_of_birth",
    "commune_code",
    "village_code",
    "polling_station",
)
SEX_VALUES = {
    "f": "F",
    "female": "F",
    "ស្រី": "F",
    "ស": "F",
    "m": "M",
    "male": "M",
    "ប្រុស": "M",
    "ប": "M",
}


class Invalid(ValueError):
    """Input refused: errors maps each bad field to what is wrong and how to fix it."""

    def __init__(self, errors: Mapping[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = dict(errors)


@dataclass(frozen=True)
class Registration:
    national_id: str
    name_km: str
    name_latin: str
    sex: str
    date_of_birth: dt.date
    commune_code: str
    village_code: str | None
    polling_station: str

    def as_json(self) -> dict[str, str | None]:
        return {
            "national_id": self.national_id,
            "name_km": self.name_km,
            "name_latin": self.name_latin,
            "sex": self.sex,
            "date_of_birth": self.date_of_birth.isoformat(),
            "commune_code": self.commune_code,
            "village_code": self.village_code,
            "polling_station": self.polling_station,
        }


def clean_text(value: str) -> str:
    """NFC, invisible format characters out, every run of spaces one plain space."""
    value = unicodedata.normalize("NFC", value)
    return _SPACES.sub(" ", _INVISIBLE.sub("", value)).strip()


def national_id(value: str) -> str:
    digits = re.sub(r"[-\s\u00a0]", "", _INVISIBLE.sub("", value.translate(KHMER_DIGITS)))
    if not digits:
        raise ValueError("is required: the 9 digits of the national ID card")
    if not digits.isascii() or not digits.isdigit():
        raise ValueError("may hold only digits (Khmer or Latin), spaces and dashes")
    if not _NATIONAL_ID.match(digits):
        raise ValueError(f"must have 9 digits, this has {len(digits)}")
    return digits


def name_km(value: str) -> str:
    name = clean_text(value)
    if not name:
        raise ValueError("is required: the name in Khmer script, family name first")
    if len(name) > 80:
        raise ValueError("is longer than 80 characters")
    if not _KHMER_NAME.match(name):
        raise ValueError("must be written in Khmer script only (no Latin letters or digits)")
    if any("\u17e0" <= c <= "\u17e9" for c in name):
        raise ValueError("must not contain digits")
    for word in name.split(" "):
        if not _KHMER_BASE.match(word[0]):
            raise ValueError(f"word {word!r} starts with a vowel sign or mark, not a letter")
    return name


def name_latin(value: str) -> str:
    name = clean_text(value)
    if not name:
        raise ValueError("is required: the name in Latin letters, family name first")
    if len(name) > 80:
        raise ValueError("is longer than 80 characters")
    if not _LATIN_NAME.match(name):
        raise ValueError("may hold only Latin letters, spaces, hyphens and apostrophes")
    return name


def sex(value: str) -> str:
    found = SEX_VALUES.get(clean_text(value).lower())
    if found is None:
        raise ValueError("must be F (ស្រី, female) or M (ប្រុស, male)")
    return found


_DAY_FIRST = re.compile(r"^([0-9]{1,2})[/.-]([0-9]{1,2})[/.-]([0-9]+)$")
_ISO = re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})$")


def date_of_birth(value: str, *, qualifying: dt.date, minimum_age: int, today: dt.date) -> dt.date:
    text = clean_text(value).translate(KHMER_DIGITS).replace(" ", "")
    if not text:
        raise ValueError("is required: day/month/year, e.g. 05/03/1990")
    iso = _ISO.match(text)
    parts = _DAY_FIRST.match(text)
    if iso:
        year, month, day = (int(p) for p in iso.groups())
    elif parts:
        day, month = int(parts.group(1)), int(parts.group(2))
        if len(parts.group(3)) != 4:
            raise ValueError("needs a four-digit year (day/month/year, e.g. 05/03/1990)")
        year = int(parts.group(3))
    else:
        raise ValueError("is not a date: write day/month/year, e.g. 05/03/1990")
    if year > today.year and 1900 <= year - BUDDHIST_ERA_OFFSET <= today.year:
        raise ValueError(
            f"year {year} looks like a Buddhist-era year; write the Common Era year "
            f"({year} BE is {year - BUDDHIST_ERA_OFFSET})"
        )
    try:
        born = dt.date(year, month, day)
    except ValueError:
        raise ValueError(f"{text} does not exist (day {day}, month {month}, year {year})") from None
    if born > today:
        raise ValueError("is in the future")
    age = (
        qualifying.year - born.year - ((qualifying.month, qualifying.day) < (born.month, born.day))
    )
    if age < minimum_age:
        raise ValueError(
            f"the voter is {age} on the qualifying date {qualifying.strftime('%d/%m/%Y')}; "
            f"voters must be at least {minimum_age}"
        )
    if age > OLDEST_AGE:
        raise ValueError(f"gives an age of {age}; check the year")
    return born


def _code(value: str, pattern: re.Pattern[str], what: str) -> str:
    code = clean_text(value).translate(KHMER_DIGITS)
    if not pattern.match(code):
        raise ValueError(f"must be {what}")
    return code


def registration(
    data: Mapping[str, object],
    *,
    qualifying: dt.date,
    minimum_age: int,
    today: dt.date | None = None,
) -> Registration:
    """The registration in data, or Invalid naming every bad field."""
    today = today or dt.date.today()
    errors: dict[str, str] = {}
    unknown = sorted(set(data) - set(FIELDS) - {"province_code", "district_code", "csrf_token"})
    for key in unknown:
        errors[str(key)[:40]] = "is not a field of a registration"
    out: dict[str, object] = {}
    checks: dict[str, Callable[[str], object]] = {
        "national_id": national_id,
        "name_km": name_km,
        "name_latin": name_latin,
        "sex": sex,
        "date_of_birth": lambda v: date_of_birth(
            v, qualifying=qualifying, minimum_age=minimum_age, today=today
        ),
        "commune_code": lambda v: _code(v, _CODE, "a 6-digit commune code"),
        "polling_station": lambda v: _code(v, _STATION, "a polling station code like 120101-01"),
    }
    for field, check in checks.items():
        raw = data.get(field)
        if raw is None or raw == "":
            raw = ""
        if not isinstance(raw, str):
            errors[field] = "must be text"
            continue
        if len(raw) > 400:
            errors[field] = "is too long"
            continue
        try:
            out[field] = check(raw)
        except ValueError as exc:
            errors[field] = str(exc)
    village = data.get("village_code")
    if village in (None, ""):
        out["village_code"] = None
    elif not isinstance(village, str):
        errors["village_code"] = "must be text"
    else:
        try:
            out["village_code"] = _code(village, _VILLAGE, "an 8-digit village code or empty")
        except ValueError as exc:
            errors["village_code"] = str(exc)
    if not errors:
        commune = str(out["commune_code"])
        if out["village_code"] and not str(out["village_code"]).startswith(commune):
            errors["village_code"] = f"is not a village of commune {commune}"
        if not str(out["polling_station"]).startswith(commune + "-"):
            errors["polling_station"] = f"is not a polling station of commune {commune}"
    if errors:
        raise Invalid(errors)
    return Registration(**out)  # type: ignore[arg-type]
