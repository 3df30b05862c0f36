"""Synthetic voters for demos, tests and benchmarks of the register.

No real person is in here: names are common Cambodian family and given names put together at
random, addresses are the shipped gazetteer's communes with the lab's villages and stations, and
national IDs are a shuffle of a counter. A small share of voters imitate an earlier one the way
double registrations look in practice (a spelling variant, an invisible character, another
commune, a mistyped birth date), and say so, so that duplicate detection can be scored.

The generator is deterministic for a seed and fast enough for benchmark registers of ten million
rows: ``python -m regapp.synthetic --count 1000000 --seed 1 > voters.copy``.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import random
import re
import sys
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from regapp import validate
from regapp.gazetteer import Station, Unit

# (Khmer, Latin) family names: the ones most Cambodians carry.
FAMILY_NAMES: tuple[tuple[str, str], ...] = (
    ("សុខ", "Sok"),
    ("ចាន់", "Chan"),
    ("ហេង", "Heng"),
    ("លី", "Ly"),
    ("គឹម", "Kim"),
    ("ជា", "Chea"),
    ("ឈឹម", "Chhim"),
    ("កែវ", "Keo"),
    ("ស៊ុន", "Sun"),
    ("ម៉ៅ", "Mao"),
    ("ស្រី", "Srey"),
    ("ទេព", "Tep"),
    ("ហ៊ុន", "Hun"),
    ("ខៀវ", "Khieu"),
    ("ញឹម", "Nhim"),
    ("ពេជ្រ", "Pich"),
    ("អ៊ុក", "Ouk"),
    ("ឡុង", "Long"),
    ("យឹម", "Yim"),
    ("សេង", "Seng"),
    ("ម៉ម", "Mom"),
    ("សួន", "Suon"),
    ("ឈុន", "Chhun"),
    ("ប៉ែន", "Pen"),
    ("ព្រំ", "Prum"),
    ("ម៉េង", "Meng"),
    ("អ៊ឹម", "Im"),
    ("អ៊ុំ", "Um"),
    ("សាន", "San"),
    ("ឆាយ", "Chhay"),
    ("សំ", "Sam"),
    ("នួន", "Nuon"),
    ("ប៊ុន", "Bun"),
    ("ទូច", "Touch"),
    ("ឌី", "Dy"),
    ("ឃុន", "Khun"),
    ("ប្រាក់", "Prak"),
    ("តាំង", "Taing"),
    ("ស៊ិន", "Sin"),
    ("វង្ស", "Vong"),
    ("ផល", "Phal"),
    ("សុង", "Song"),
    ("រស់", "Ros"),
    ("ឡាយ", "Lay"),
    ("ទិត្យ", "Tith"),
    ("ងួន", "Nguon"),
    ("ចេង", "Cheng"),
    ("ញ៉ែម", "Nhem"),
    ("ឈួន", "Chhuon"),
    ("ម៉ាន់", "Man"),
    ("ពៅ", "Pov"),
    ("សោម", "Som"),
    ("ភឿន", "Phoeun"),
    ("ជួន", "Chuon"),
    ("ថាច់", "Thach"),
    ("អ៊ុង", "Ung"),
    ("ឃឹម", "Khim"),
    ("ម៉ក់", "Mok"),
    ("ទៀង", "Tieng"),
    ("ធី", "Thy"),
    ("ពុធ", "Puth"),
    ("ហាក់", "Hak"),
    ("ឡេង", "Leng"),
    ("គង់", "Kong"),
    ("ស្វាយ", "Svay"),
    ("ផាន់", "Phan"),
    ("ឈាង", "Chheang"),
    ("ហួត", "Huot"),
    ("អ៊ាង", "Ang"),
    ("មាស", "Meas"),
    ("ខេង", "Kheng"),
    ("អៀង", "Eang"),
)

# (Khmer, Latin, sex): F and M by custom, U given to either.
GIVEN_NAMES: tuple[tuple[str, str, str], ...] = (
    ("សុភា", "Sophea", "F"),
    ("ស្រីពៅ", "Srey Pov", "F"),
    ("ចន្ថា", "Chantha", "U"),
    ("សុខា", "Sokha", "U"),
    ("វណ្ណា", "Vanna", "U"),
    ("ដារ៉ា", "Dara", "M"),
    ("ស្រីមុំ", "Srey Mom", "F"),
    ("ស្រីនាង", "Srey Neang", "F"),
    ("ស្រីល័ក្ខ", "Srey Leak", "F"),
    ("សុភី", "Sophy", "F"),
    ("ចាន់ធី", "Chanthy", "F"),
    ("ធីតា", "Thida", "F"),
    ("បុប្ផា", "Bopha", "F"),
    ("ច័ន្ទ", "Chan", "U"),
    ("ស្រីនិច", "Srey Nich", "F"),
    ("និមល", "Nimol", "F"),
    ("រតនា", "Rathana", "F"),
    ("សុវណ្ណ", "Sovann", "M"),
    ("សុជាតា", "Socheata", "F"),
    ("ម៉ានី", "Many", "F"),
    ("ស្រីអូន", "Srey Oun", "F"),
    ("ស្រីរ័ត្ន", "Srey Roth", "F"),
    ("ចាន់ណា", "Channa", "U"),
    ("ពិសី", "Pisey", "F"),
    ("សុផល", "Sophal", "M"),
    ("លក្ខិណា", "Leakhena", "F"),
    ("រស្មី", "Reaksmey", "U"),
    ("សុគន្ធា", "Sokunthea", "F"),
    ("គន្ធា", "Kunthea", "F"),
    ("ស្រីពេជ្រ", "Srey Pich", "F"),
    ("ចិន្តា", "Chenda", "F"),
    ("នារី", "Neary", "F"),
    ("សុម៉ាលី", "Somaly", "F"),
    ("ស្រីលីន", "Srey Lin", "F"),
    ("ដាលីន", "Dalin", "F"),
    ("សុខលី", "Sokly", "F"),
    ("កញ្ញា", "Kanha", "F"),
    ("ស្រីម៉ៅ", "Srey Mao", "F"),
    ("ណារី", "Nary", "F"),
    ("វិច្ឆិកា", "Vichhika", "F"),
    ("ពិសិដ្ឋ", "Piseth", "M"),
    ("មករា", "Makara", "U"),
    ("សុភ័ក្ត្រ", "Sopheak", "M"),
    ("ណាវី", "Navy", "F"),
    ("ស្រីណា", "Srey Na", "F"),
    ("ចរិយា", "Chariya", "F"),
    ("សុធារី", "Sotheary", "F"),
    ("រចនា", "Rachana", "F"),
    ("សុភាព", "Sopheap", "U"),
    ("ធារី", "Theary", "F"),
    ("ស្រីស", "Srey Sa", "F"),
    ("បូរ៉ា", "Bora", "M"),
    ("ផល្លា", "Phalla", "F"),
    ("ផល្លី", "Phally", "F"),
    ("សាវឿន", "Savoeun", "M"),
    ("ចាន់ធូ", "Chanthou", "F"),
    ("ស្រីមាស", "Srey Meas", "F"),
    ("កល្យាណ", "Kalyan", "U"),
    ("សំណាង", "Samnang", "U"),
    ("វិបុល", "Vibol", "M"),
    ("វាសនា", "Veasna", "M"),
    ("វិសាល", "Visal", "M"),
    ("រិទ្ធី", "Rithy", "M"),
    ("សម្បត្តិ", "Sambath", "M"),
    ("សុខុម", "Sokhom", "M"),
    ("វុទ្ធី", "Vuthy", "M"),
    ("ចំរើន", "Chamroeun", "M"),
    ("ណារិទ្ធ", "Narith", "M"),
    ("សុផានិត", "Sophanith", "M"),
    ("ពិសាល", "Pisal", "M"),
    ("វណ្ណៈ", "Vannak", "M"),
    ("សុខេង", "Sokheng", "M"),
    ("ចាន់ថន", "Chanthon", "M"),
    ("វិចិត្រ", "Vichet", "M"),
    ("សុធា", "Sothea", "M"),
    ("រដ្ឋា", "Rotha", "M"),
    ("សុវត្ថិ", "Sovath", "M"),
    ("ចាន់ដារ៉ា", "Chandara", "M"),
    ("ធារិទ្ធ", "Tharith", "M"),
    ("ឧត្តម", "Oudom", "M"),
    ("សុខឿន", "Sokhoeun", "M"),
    ("បញ្ញា", "Panha", "M"),
    ("ភក្តី", "Pheakdey", "M"),
    ("វិរៈ", "Virak", "M"),
    ("ចន្ទ្រា", "Chantrea", "F"),
    ("គឹមហេង", "Kimheng", "M"),
    ("មេសា", "Mesa", "F"),
    ("កុសល", "Kosal", "M"),
    ("ស្រីតូច", "Srey Touch", "F"),
    ("ផានិត", "Phanith", "M"),
    ("សុខណា", "Sokna", "F"),
    ("ស៊ីណា", "Sina", "F"),
    ("ចាន់ណារី", "Channary", "F"),
    ("លីដា", "Lida", "F"),
    ("ពុទ្ធី", "Puthy", "M"),
    ("រ៉ាវី", "Ravy", "F"),
    ("សុភាន់", "Sophan", "M"),
    ("ខេមរា", "Khemara", "M"),
    ("ណារ៉ុង", "Narong", "M"),
    ("វណ្ណារិទ្ធ", "Vannarith", "M"),
    ("សុវណ្ណារី", "Sovannary", "F"),
    ("លីនដា", "Linda", "F"),
    ("ស៊ីថា", "Sitha", "M"),
    ("សុធី", "Sothy", "M"),
    ("ធារ៉ា", "Theara", "M"),
    ("សុជាតិ", "Socheat", "M"),
    ("ពន្លឺ", "Ponleu", "M"),
    ("មុនី", "Mony", "U"),
    ("អរុណ", "Arun", "M"),
    ("ដាវី", "Davy", "F"),
    ("វិសុទ្ធ", "Visoth", "M"),
    ("សារិន", "Sarin", "M"),
    ("សារឿន", "Saroeun", "M"),
    ("សារី", "Sary", "F"),
    ("សាវី", "Savy", "F"),
    ("លីណា", "Lina", "F"),
    ("កញ្ចនា", "Kanchana", "F"),
    ("ម្លិះ", "Mlis", "F"),
    ("រំដួល", "Rumduol", "F"),
    ("ចំប៉ា", "Champa", "F"),
    ("សុភ័ក្ត្រា", "Sopheaktra", "F"),
    ("ប៊ុនថន", "Bunthon", "M"),
    ("វិចិត្រា", "Vichetra", "F"),
    ("គឹមលី", "Kimly", "F"),
    ("ផាន់ណា", "Phanna", "F"),
    ("វុទ្ធា", "Vutha", "M"),
    ("ប៊ុនរិទ្ធ", "Bunrith", "M"),
    ("តុលា", "Tola", "M"),
    ("កក្កដា", "Kakada", "M"),
    ("មិថុនា", "Mithona", "F"),
    ("មីនា", "Mina", "F"),
    ("សីហា", "Seyha", "M"),
    ("ចិត្រា", "Chetra", "F"),
    ("ប៊ុនហេង", "Bunheng", "M"),
    ("ម៉េងលី", "Mengly", "M"),
    ("វិទូ", "Vitou", "M"),
    ("ធារិន", "Tharin", "M"),
    ("ស្រីនី", "Srey Ny", "F"),
    ("នីសា", "Nisa", "F"),
    ("រតនៈ", "Rathanak", "M"),
    ("ឆវី", "Chhavy", "F"),
    ("សម្ផស្ស", "Samphors", "F"),
    ("ម៉ានិត", "Manith", "M"),
    ("ប៊ុនលី", "Bunly", "M"),
    ("ប៊ុនថា", "Buntha", "M"),
    ("លីហេង", "Lyheng", "M"),
    ("ទេវី", "Tevy", "F"),
    ("វណ្ណារី", "Vannary", "F"),
    ("រ៉ាវុធ", "Ravuth", "M"),
    ("សាវុធ", "Savuth", "M"),
    ("សុផានី", "Sophany", "F"),
    ("សៀវម៉ី", "Sievmey", "F"),
    ("សំអុល", "Sam Ol", "M"),
    ("សុខជា", "Sokchea", "M"),
)

# Spellings clerks and voters really use for the same name.
LATIN_VARIANTS = {
    "Sophea": ("Sopheap", "Sophia"),
    "Chhay": ("Chay", "Chhai"),
    "Sok": ("Sokh", "Sokk"),
    "Ly": ("Lee", "Li"),
    "Kim": ("Kem", "Khim"),
    "Chea": ("Chia", "Cheah"),
    "Keo": ("Kaev", "Keov"),
    "Chan": ("Chann", "Chanh"),
    "Srey": ("Srei", "Sray"),
    "Heng": ("Hieng", "Haeng"),
    "Vanna": ("Vana", "Vannah"),
    "Sokha": ("Sokhar", "Sokhaa"),
    "Dara": ("Darah", "Darra"),
    "Chantha": ("Chanta", "Chanthar"),
    "Piseth": ("Piset", "Pisith"),
    "Bopha": ("Bupha", "Bopa"),
    "Thida": ("Tida", "Theda"),
    "Rithy": ("Rithi", "Rity"),
    "Sovann": ("Sovan", "Sovanna"),
    "Chhim": ("Chim", "Chhem"),
    "Pich": ("Pech", "Pech"),
    "Long": ("Loung", "Lung"),
    "Mao": ("Mau", "Meao"),
    "Srey Pov": ("Srei Pov", "Sreypov"),
    "Sun": ("Soun", "Sunn"),
}
_LATIN_RULES = (
    (re.compile(r"Chh"), "Ch"),
    (re.compile(r"ey\b"), "ei"),
    (re.compile(r"ei\b"), "ey"),
    (re.compile(r"ea"), "ia"),
    (re.compile(r"ou"), "o"),
    (re.compile(r"nn"), "n"),
    (re.compile(r"th"), "t"),
    (re.compile(r"ph"), "p"),
    (re.compile(r"kh"), "k"),
    (re.compile(r"y\b"), "i"),
    (re.compile(r"a\b"), "ah"),
    (re.compile(r"o\b"), "ou"),
)
COENG = "\u17d2"
# Khmer misspellings that keep the name readable: signs swapped or dropped, one subscript lost.
_KHMER_RULES = (
    ("\u17d2\u178f", "\u17d2\u178a"),
    ("\u17d2\u178a", "\u17d2\u178f"),  # subscript TA/DA
    ("\u17b8", "\u17b7"),
    ("\u17b7", "\u17b8"),  # long/short I
    ("\u17bc", "\u17bb"),
    ("\u17bb", "\u17bc"),  # long/short U
    ("\u17b9", "\u17ba"),
    ("\u17ba", "\u17b9"),  # short/long Y
    ("\u17c1", "\u17c2"),
    ("\u17c2", "\u17c1"),  # E/AE
    ("\u17c4", "\u17c5"),
    ("\u17c5", "\u17c4"),  # OO/AU
    ("\u17b6\u17c6", "\u17c6"),  # AA before NIKAHIT lost
    ("\u17cb", ""),
    ("\u17c9", ""),
    ("\u17ca", ""),  # BANTOC, MUUSIKATOAN, TRIISAP dropped
    ("\u17c6", ""),  # NIKAHIT dropped
)
ZERO_WIDTH_SPACE = "\u200b"
NO_BREAK_SPACE = "\u00a0"

KINDS = ("latin_spelling", "khmer_invisible", "khmer_spelling", "other_commune", "other_birth_date")

# Rough population shares of the provinces (2019 census, thousands): every province votes.
PROVINCE_WEIGHTS = {
    "01": 860,
    "02": 997,
    "03": 899,
    "04": 527,
    "05": 877,
    "06": 677,
    "07": 593,
    "08": 1195,
    "09": 123,
    "10": 373,
    "11": 88,
    "12": 2282,
    "13": 252,
    "14": 1057,
    "15": 412,
    "16": 204,
    "17": 1006,
    "18": 302,
    "19": 160,
    "20": 525,
    "21": 900,
    "22": 276,
    "23": 42,
    "24": 72,
    "25": 776,
}
# Relative number of people at each age band, skewed young like Cambodia's population.
AGE_WEIGHTS = (
    (18, 29, 1.0),
    (30, 39, 0.85),
    (40, 49, 0.65),
    (50, 59, 0.45),
    (60, 69, 0.28),
    (70, 79, 0.13),
    (80, 89, 0.05),
    (90, 95, 0.015),
)
MIN_AGE, MAX_AGE = 18, 95
FEMALE_SHARE = 0.51
# National ID = (A * n + B) mod 10^9: a bijection (A is coprime to 10), so counters that do not
# overlap give IDs that do not collide, whatever the seed.
_ID_MODULUS = 10**9
_ID_FACTOR = 387_420_489
_ID_OFFSET = 135_792_468
_RECENT = 50_000  # how far back a near-duplicate may reach


@dataclass(frozen=True)
class Voter:
    national_id: str
    name_km: str
    name_latin: str
    sex: str
    date_of_birth: date
    commune_code: str
    village_code: str
    polling_station: str
    near_duplicate_of: int | None = None
    near_duplicate_kind: str | None = None


_new_object = object.__new__
_set_attribute = object.__setattr__


def _new_voter(
    national_id: str,
    name_km: str,
    name_latin: str,
    sex: str,
    date_of_birth: date,
    commune_code: str,
    village_code: str,
    polling_station: str,
) -> Voter:
    """Voter(...) for an ordinary voter at a third of the cost of the frozen __init__.

    A frozen dataclass sets each field through object.__setattr__; handing the instance its
    attribute dictionary whole is what makes ten million voters a matter of minutes.
    """
    voter: Voter = _new_object(Voter)
    _set_attribute(
        voter,
        "__dict__",
        {
            "national_id": national_id,
            "name_km": name_km,
            "name_latin": name_latin,
            "sex": sex,
            "date_of_birth": date_of_birth,
            "commune_code": commune_code,
            "village_code": village_code,
            "polling_station": polling_station,
            "near_duplicate_of": None,
            "near_duplicate_kind": None,
        },
    )
    return voter


def national_id(number: int) -> str:
    """The nine-digit national ID of the ``number``-th synthetic voter (a permutation)."""
    return f"{(_ID_FACTOR * number + _ID_OFFSET) % _ID_MODULUS:09d}"


def latin_variants(name: str) -> tuple[str, ...]:
    """Other ways the same Latin name gets spelt; never the name itself."""
    found = [v for v in LATIN_VARIANTS.get(name, ()) if v != name]
    for pattern, replacement in _LATIN_RULES:
        changed = pattern.sub(replacement, name, count=1)
        if changed != name and changed not in found:
            found.append(changed)
    if not found and not name.endswith("h"):
        found.append(name + "h")  # a final h is the spelling nobody can rule out
    return tuple(found)


def khmer_variants(name: str) -> tuple[str, ...]:
    """Misspellings of a Khmer name: a sign swapped or dropped, or one subscript dropped."""
    found: list[str] = []
    for old, new in _KHMER_RULES:
        if old in name:
            found.append(name.replace(old, new, 1))
    position = name.find(COENG)
    if 0 < position < len(name) - 1:
        found.append(name[:position] + name[position + 2 :])
    return tuple(dict.fromkeys(v for v in found if v != name and v.strip()))


@dataclass(frozen=True)
class _Commune:
    code: str
    villages: tuple[str, ...]
    stations: tuple[str, ...]


class _Plan:
    """Everything the generator draws from, prepared once so each voter costs a few draws."""

    def __init__(self, units: Sequence[Unit], stations: Sequence[Station], qualifying: date):
        villages: dict[str, list[str]] = {}
        for unit in units:
            if unit.level == "village" and unit.parent_code:
                villages.setdefault(unit.parent_code, []).append(unit.code)
        by_commune: dict[str, list[str]] = {}
        for station in stations:
            by_commune.setdefault(station.commune_code, []).append(station.code)
        communes = [
            _Commune(u.code, tuple(sorted(villages[u.code])), tuple(sorted(by_commune[u.code])))
            for u in sorted(units, key=lambda u: u.code)
            if u.level == "commune" and villages.get(u.code) and by_commune.get(u.code)
        ]
        if not communes:
            raise ValueError(
                "no commune has both a village and a polling station; pass units "
                "with villages (gazetteer.shipped()) and gazetteer.stations(units)"
            )
        self.communes = communes
        per_province: dict[str, int] = {}
        for commune in communes:
            per_province[commune.code[:2]] = per_province.get(commune.code[:2], 0) + 1
        # One draw picks a whole address: (commune, village, station) weighted by the rough
        # population of its province, shared out over its communes and their villages.
        self.addresses: list[tuple[str, str, str]] = []
        weights: list[float] = []
        for commune in communes:
            province = commune.code[:2]
            share = PROVINCE_WEIGHTS.get(province, 100) / per_province[province]
            for where, village in enumerate(commune.villages):
                place = commune.stations[where if where < len(commune.stations) else 0]
                self.addresses.append((commune.code, village, place))
                weights.append(share / len(commune.villages))
        self.address_cumulative = _cumulative(weights)
        self.addresses.append(self.addresses[-1])  # bisect may land past the end on rounding
        # the first voters visit every province once, so even a small run covers them all
        self.first_addresses = [
            next(a for a in self.addresses if a[0][:2] == p) for p in sorted(per_province)
        ]

        # One draw picks a birth date, each weighted by the age it gives on the qualifying date.
        days: list[tuple[date, float]] = []
        for low, high, weight in AGE_WEIGHTS:
            for age in range(low, high + 1):
                youngest = _years_before(qualifying, age)  # turns ``age`` on the day
                oldest = _years_before(qualifying, age + 1) + timedelta(days=1)
                days += [
                    (oldest + timedelta(days=d), weight)
                    for d in range((youngest - oldest).days + 1)
                ]
        days.sort()
        self.born_on = [day for day, _ in days]
        self.birth_cumulative = _cumulative([weight for _, weight in days])
        self.born_on.append(self.born_on[-1])  # the rounding slot, as for addresses

        # every family name with every given name of each sex, Khmer and Latin in one draw
        self.names = {
            sex: [
                (f"{fam_km} {km}", f"{fam_la} {la}")
                for fam_km, fam_la in FAMILY_NAMES
                for km, la, s in GIVEN_NAMES
                if s in (sex, "U")
            ]
            for sex in ("F", "M")
        }


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a common year
        return day.replace(year=day.year - years, day=28)


def _cumulative(weights: Sequence[float]) -> list[float]:
    whole, total, result = sum(weights), 0.0, []
    for weight in weights:
        total += weight
        result.append(total / whole)
    return result


def voters(
    count: int,
    *,
    seed: int,
    units: Sequence[Unit],
    stations: Sequence[Station],
    near_duplicate_share: float = 0.02,
    qualifying_date: date = date(2028, 7, 1),
    first_id: int = 1,
) -> Iterator[Voter]:
    """``count`` voters, the same ones for the same arguments.

    Voter ``i`` gets national ID ``national_id(first_id + i)``; runs whose ``first_id`` ranges do
    not overlap never share an ID. A near-duplicate copies one of the last 50,000 ordinary voters
    of this run (``near_duplicate_of`` is that voter's index) with a new national ID and one
    change named by ``near_duplicate_kind`` (see KINDS). The ``khmer_invisible`` kind puts a
    zero-width or no-break space into the Khmer name as a clerk's keyboard might: copy_rows
    cleans it by default because the register stores names cleaned.
    """
    if count < 0:
        raise ValueError(f"count is {count}; give zero or more")
    if not 0.0 <= near_duplicate_share < 1.0:
        raise ValueError(f"near_duplicate_share is {near_duplicate_share}; give 0 <= share < 1")
    plan = _Plan(units, stations, qualifying_date)
    rng = random.Random(seed)  # noqa: S311 - made-up voters need repeatable, not secret, draws
    rand = rng.random
    search = bisect.bisect
    addresses, address_cumulative = plan.addresses, plan.address_cumulative
    born_on, birth_cumulative = plan.born_on, plan.birth_cumulative
    names_f, names_m = plan.names["F"], plan.names["M"]
    f_scale, m_scale = len(names_f) / FEMALE_SHARE, len(names_m) / (1 - FEMALE_SHARE)
    first_addresses = plan.first_addresses
    n_first = len(first_addresses)
    new = _new_voter
    recent: list[Voter] = []  # the last ordinary voters, and their indexes
    recent_index: list[int] = []
    number = (_ID_FACTOR * first_id + _ID_OFFSET) % _ID_MODULUS
    originals = 0
    for index in range(count):
        nid = f"{number:09d}"
        number = (number + _ID_FACTOR) % _ID_MODULUS
        if originals and rand() < near_duplicate_share:
            pick = int(rand() * len(recent))
            yield _imitate(recent[pick], recent_index[pick], nid, rng, plan)
            continue
        if originals < n_first:
            commune, village, station = first_addresses[originals]
        else:
            commune, village, station = addresses[search(address_cumulative, rand())]
        r = rand()  # one draw for the sex and, scaled, the name
        if r < FEMALE_SHARE:
            sex = "F"
            name_km, name_latin = names_f[int(r * f_scale)]
        else:
            sex = "M"
            name_km, name_latin = names_m[int((r - FEMALE_SHARE) * m_scale)]
        voter = new(
            nid,
            name_km,
            name_latin,
            sex,
            born_on[search(birth_cumulative, rand())],
            commune,
            village,
            station,
        )
        if originals < _RECENT:
            recent.append(voter)
            recent_index.append(index)
        else:
            slot = originals % _RECENT
            recent[slot] = voter
            recent_index[slot] = index
        originals += 1
        yield voter


def _imitate(original: Voter, origin: int, nid: str, rng: random.Random, plan: _Plan) -> Voter:
    """A new registration of the same person, changed the way double registrations are."""
    kinds = list(KINDS)
    rng.shuffle(kinds)
    for kind in kinds:
        changed = _change(kind, original, rng, plan)
        if changed is not None:
            name_km, name_latin, born, commune_code, village, station = changed
            return Voter(
                nid,
                name_km,
                name_latin,
                original.sex,
                born,
                commune_code,
                village,
                station,
                origin,
                kind,
            )
    raise AssertionError("other_birth_date always applies")  # pragma: no cover


def _change(
    kind: str, v: Voter, rng: random.Random, plan: _Plan
) -> tuple[str, str, date, str, str, str] | None:
    family_km, _, given_km = v.name_km.partition(" ")
    family_la, _, given_la = v.name_latin.partition(" ")
    place = (v.commune_code, v.village_code, v.polling_station)
    if kind == "latin_spelling":
        options = [f"{variant} {given_la}" for variant in latin_variants(family_la)]
        options += [f"{family_la} {variant}" for variant in latin_variants(given_la)]
        if not options:
            return None
        return (v.name_km, rng.choice(options), v.date_of_birth, *place)
    if kind == "khmer_invisible":
        where = rng.randrange(3)
        if where == 0:
            name = f"{family_km}{NO_BREAK_SPACE}{given_km}"
        elif where == 1:
            name = f"{family_km} {ZERO_WIDTH_SPACE}{given_km}"
        else:
            name = f"{family_km}{ZERO_WIDTH_SPACE} {given_km}{ZERO_WIDTH_SPACE}"
        return (name, v.name_latin, v.date_of_birth, *place)
    if kind == "khmer_spelling":
        options = [f"{variant} {given_km}" for variant in khmer_variants(family_km)]
        options += [f"{family_km} {variant}" for variant in khmer_variants(given_km)]
        if not options:
            return None
        return (rng.choice(options), v.name_latin, v.date_of_birth, *place)
    if kind == "other_commune":
        if len(plan.communes) < 2:
            return None
        commune = plan.communes[rng.randrange(len(plan.communes))]
        while commune.code == v.commune_code:
            commune = plan.communes[rng.randrange(len(plan.communes))]
        where = rng.randrange(len(commune.villages))
        station = commune.stations[min(where, len(commune.stations) - 1)]
        return (
            v.name_km,
            v.name_latin,
            v.date_of_birth,
            commune.code,
            commune.villages[where],
            station,
        )
    # other_birth_date: day and month swapped when both fit, else a slip of days or a year
    born = v.date_of_birth
    if born.day <= 12 and born.day != born.month:
        other = born.replace(month=born.day, day=born.month)
    elif rng.random() < 0.5:
        other = born + timedelta(days=rng.choice((-10, -2, -1, 1, 2, 10)))
    else:
        other = _years_before(born, rng.choice((-1, 1)))
    name_latin = v.name_latin
    if rng.random() < 0.5:
        options = [f"{family_la} {variant}" for variant in latin_variants(given_la)]
        name_latin = rng.choice(options) if options else name_latin
    return (v.name_km, name_latin, other, *place)


_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b\u200e"
    "\u200f\u202a-\u202e\u2060-\u206f\ufeff]"
)
_SPACES = re.compile(r"[\s\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+")
COPY_COLUMNS = validate.FIELDS


def clean(text: str) -> str:
    """A name as the register stores it: NFC, no invisible characters, single plain spaces."""
    return _SPACES.sub(" ", _INVISIBLE.sub("", unicodedata.normalize("NFC", text))).strip()


def copy_rows(voters: Iterable[Voter], *, raw: bool = False) -> Iterator[str]:
    """COPY text-format lines, newline included, in COPY_COLUMNS order.

    Names are written as the register stores them unless ``raw``: register.voter refuses a name
    that is not already clean, and only the khmer_invisible near-duplicates are not.
    """
    escapes = _ESCAPES
    iso: dict[date, str] = {}  # a register holds a few tens of thousands of distinct birth dates
    for v in voters:
        name_km, name_latin = v.name_km, v.name_latin
        if v.near_duplicate_kind == "khmer_invisible" and not raw:
            name_km, name_latin = clean(name_km), clean(name_latin)
        born = iso.get(v.date_of_birth)
        if born is None:
            born = iso[v.date_of_birth] = v.date_of_birth.isoformat()
        line = (
            f"{v.national_id}\t{name_km}\t{name_latin}\t{v.sex}\t{born}\t{v.commune_code}\t"
            f"{v.village_code}\t{v.polling_station}\n"
        )
        if line.count("\t") != 7 or "\\" in line or "\r" in line or line.count("\n") != 1:
            fields = (
                v.national_id,
                name_km,
                name_latin,
                v.sex,
                born,
                v.commune_code,
                v.village_code,
                v.polling_station,
            )
            line = "\t".join("\\N" if f is None else f.translate(escapes) for f in fields) + "\n"
        yield line


def main(argv: Sequence[str] | None = None) -> int:
    """Write synthetic voters as COPY lines to standard output."""
    parser = argparse.ArgumentParser(
        prog="python -m regapp.synthetic",
        description="Synthetic voters as COPY text lines (columns: "
        + ", ".join(COPY_COLUMNS)
        + ") on the shipped gazetteer and the lab's polling stations.",
    )
    parser.add_argument("--count", type=int, required=True, help="how many voters")
    parser.add_argument("--seed", type=int, default=1, help="same seed, same voters (default 1)")
    parser.add_argument(
        "--near-duplicates",
        type=float,
        default=0.02,
        metavar="SHARE",
        help="share of voters imitating an earlier one (default 0.02)",
    )
    parser.add_argument(
        "--first-id",
        type=int,
        default=1,
        help="counter of the first national ID; runs with ranges that do not "
        "overlap never collide (default 1)",
    )
    parser.add_argument(
        "--qualifying-date",
        type=date.fromisoformat,
        default=date(2028, 7, 1),
        help="ages 18 to 95 on this day (default 2028-07-01)",
    )
    parser.add_argument(
        "--raw",
        action="store_true",
        help="keep invisible characters in names (register.voter refuses them)",
    )
    args = parser.parse_args(argv)
    from regapp import gazetteer

    units = gazetteer.shipped()
    try:
        people = voters(
            args.count,
            seed=args.seed,
            units=units,
            stations=gazetteer.stations(units),
            near_duplicate_share=args.near_duplicates,
            qualifying_date=args.qualifying_date,
            first_id=args.first_id,
        )
        lines = copy_rows(people, raw=args.raw)
        out = sys.stdout.buffer
        while chunk := list(itertools.islice(lines, 10_000)):
            out.write("".join(chunk).encode())
        out.flush()
    except ValueError as exc:
        parser.error(str(exc))
    except BrokenPipeError:  # `| head` is a fine way to look at a few
        sys.stderr.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
