"""The registration app on app1, through real HTTPS from the office network (issue 4).

The last test drives Debian's headless Chromium (Selenium, Debian's chromedriver) in client1's
network namespace, trusting the room's CA through its own NSS database, as a clerk's
workstation configured by the commission would.

Every request leaves from client1's address and crosses fw1, as a clerk's would (see
roomctl.office). What the register stored is read back with psql on db1, so a test sees rows,
not only answers.
"""

from __future__ import annotations

import concurrent.futures
import json
import secrets
import shlex
import subprocess
import sys
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from roomctl import lab as lab_mod
from roomctl import office as office_mod
from roomctl import room as room_mod

APP = "https://198.18.1.20"
CONSONANTS = "កខគឃងចឆជឈញដឋឌឍណតថទធនបផពភមយរលវសហឡអ"
VOWELS = ["ា", "ិ", "ី", "ុ", "ូ", "េ", "ែ", "ោ", "ៅ", ""]
LATIN = "bcdfghklmnprstvy"


def khmer_word(rng: secrets.SystemRandom, syllables: int = 3) -> str:
    return "".join(rng.choice(CONSONANTS) + rng.choice(VOWELS) for _ in range(syllables))


def latin_word(rng: secrets.SystemRandom) -> str:
    return "".join(rng.choice(LATIN) + rng.choice("aeiou") for _ in range(3)).title()


class Person:
    """A voter nobody has registered yet: a fresh name, ID and birth date each time."""

    rng = secrets.SystemRandom()

    def __init__(self, commune: str, station: str, **fields: str):
        year = self.rng.randrange(1940, 2004)
        self.fields = {
            "national_id": f"{self.rng.randrange(10**8, 10**9):09d}",
            "name_km": f"{khmer_word(self.rng, 2)} {khmer_word(self.rng)}",
            "name_latin": f"{latin_word(self.rng)} {latin_word(self.rng)}",
            "sex": self.rng.choice("FM"),
            "date_of_birth": f"{self.rng.randrange(1, 29):02d}/{self.rng.randrange(1, 13):02d}/"
            f"{year}",
            "commune_code": commune,
            "polling_station": station,
            **fields,
        }

    def but(self, **fields: str) -> dict[str, str]:
        return {**self.fields, **fields}

    def new_id(self, **fields: str) -> dict[str, str]:
        return self.but(national_id=f"{self.rng.randrange(10**8, 10**9):09d}", **fields)


@pytest.fixture(scope="module")
def app_release(released: Any) -> Any:
    return released


def _regapp(args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """regapp on app1 as root (test setup; passwords go through stdin, never argv)."""
    return subprocess.run(
        [
            "podman",
            "exec",
            "-i",
            lab_mod.container("app1"),
            "sh",
            "-c",
            f"/opt/regapp/current/venv/bin/regapp {args}",
        ],
        input=stdin,
        text=True,
        capture_output=True,
        check=False,
        timeout=120,
    )


@pytest.fixture(scope="module")
def users(app_release: Any) -> dict[str, tuple[str, str]]:
    """One user per role (two supervisors), with fresh passwords for this test session."""
    made = {}
    for name, role in [
        ("clerk1", "clerk"),
        ("clerk2", "clerk"),
        ("super1", "supervisor"),
        ("super2", "supervisor"),
        ("audit1", "auditor"),
    ]:
        password = secrets.token_urlsafe(18)
        added = _regapp(f"user add {name} --role {role}", password + "\n")
        if added.returncode != 0:
            changed = _regapp(f"user passwd {name}", password + "\n")
            assert changed.returncode == 0, changed.stderr
        made[name] = (name, password)
    loaded = _regapp("gazetteer --lab")
    assert loaded.returncode == 0, loaded.stderr
    return made


@pytest.fixture(scope="module")
def ca_file(host: Callable[[str], Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The room's CA certificate, as a clerk's workstation would trust it."""
    path = tmp_path_factory.mktemp("ca") / "ca.crt"
    path.write_text(host("app1").file("/etc/roomctl/tls/ca.crt").content_string)
    return path


@pytest.fixture(scope="module")
def session(
    users: dict[str, tuple[str, str]], ca_file: Path
) -> Iterator[Callable[[str], office_mod.Office]]:
    """A logged-in browser-like session from client1, per user, kept for the module."""
    opened: dict[str, office_mod.Office] = {}

    def get(name: str) -> office_mod.Office:
        if name not in opened:
            client = office_mod.Office(APP, ca_file)
            client.login(*users[name])
            opened[name] = client
        return opened[name]

    yield get
    for client in opened.values():
        client.close()


@pytest.fixture(scope="module")
def place(session: Callable[[str], office_mod.Office]) -> tuple[str, str]:
    """A commune and one of its polling stations, as the form would offer them."""
    clerk = session("clerk1")
    province = clerk.get("/api/units").json["units"][0]["code"]
    district = clerk.get(f"/api/units?parent={province}").json["units"][0]["code"]
    commune = clerk.get(f"/api/units?parent={district}").json["units"][0]["code"]
    station = clerk.get(f"/api/units?parent={commune}").json["stations"][0]["code"]
    return commune, station


def random_place(clerk: office_mod.Office) -> tuple[str, str]:
    """A commune picked at random down the gazetteer, and one of its polling stations."""
    code = ""
    for _ in range(3):
        code = Person.rng.choice(clerk.get(f"/api/units?parent={code}").json["units"])["code"]
    stations = clerk.get(f"/api/units?parent={code}").json["stations"]
    return code, Person.rng.choice(stations)["code"]


@pytest.fixture(scope="module")
def count(room: room_mod.Room, host: Callable[[str], Any]) -> Callable[[], tuple[int, int]]:
    """Voters and held registrations stored, read on the primary."""

    def get() -> tuple[int, int]:
        out = host("db1").check_output(
            "runuser -u postgres -- psql -XAt -d register -c "
            + shlex.quote(
                "SELECT (SELECT count(*) FROM register.voter) || ' ' || "
                "(SELECT count(*) FROM register.held_registration)"
            )
        )
        voters, held = out.split()
        return int(voters), int(held)

    return get


def register(clerk: office_mod.Office, fields: dict[str, str]) -> office_mod.Answer:
    return clerk.post("/api/registrations", json=fields)


def test_a_registration_is_stored_and_found(session: Any, place: Any, count: Any) -> None:
    clerk = session("clerk1")
    person = Person(*place)
    before = count()
    answer = register(clerk, person.fields)
    assert answer.status == 201, answer.text
    assert count() == (before[0] + 1, before[1])
    found = clerk.get(f"/api/voters?national_id={person.fields['national_id']}").json["voters"]
    assert [v["name_km"] for v in found] == [person.fields["name_km"]]


@pytest.mark.parametrize(
    "typed",
    [
        "same",
        "khmer digits",
        "spaces",
        "dashes and a no-break space",
    ],
)
def test_the_same_national_id_is_refused_however_typed(
    session: Any, place: Any, count: Any, typed: str
) -> None:
    clerk = session("clerk1")
    person = Person(*place)
    assert register(clerk, person.fields).status == 201
    nid = person.fields["national_id"]
    variant = {
        "same": nid,
        "khmer digits": nid.translate(str.maketrans("0123456789", "០១២៣៤៥៦៧៨៩")),
        "spaces": f" {nid[:3]} {nid[3:6]} {nid[6:]} ",
        "dashes and a no-break space": f"{nid[:3]}-{nid[3:6]}\u00a0{nid[6:]}",
    }[typed]
    before = count()
    # Another person altogether, with the same ID: refused outright, not held.
    answer = register(clerk, Person(*place).fields | {"national_id": variant})
    assert answer.status == 409, answer.text
    assert "already registered" in answer.json["errors"]["national_id"]
    assert count() == before


@pytest.mark.parametrize("change", ["identical", "NFD", "zero-width space", "no-break space"])
def test_the_same_name_and_birth_under_a_new_id_is_held(
    session: Any, place: Any, count: Any, change: str
) -> None:
    clerk = session("clerk1")
    person = Person(*place)
    # UNGEGN romanisation writes vowels with accents: NFD splits them from their letters. (No
    # Khmer character decomposes, so NFD leaves the Khmer name as it is.)
    person.fields["name_latin"] = "Sâmbo " + person.fields["name_latin"]
    assert register(clerk, person.fields).status == 201

    def vary(name: str) -> str:
        return {
            "identical": name,
            "NFD": unicodedata.normalize("NFD", name),
            "zero-width space": name[:1] + "\u200b" + name[1:],
            "no-break space": name.replace(" ", "\u00a0"),
        }[change]

    names = (vary(person.fields["name_km"]), vary(person.fields["name_latin"]))
    assert (names == (person.fields["name_km"], person.fields["name_latin"])) == (
        change == "identical"
    )
    before = count()
    answer = register(clerk, person.new_id(name_km=names[0], name_latin=names[1]))
    assert answer.status == 202, answer.text
    assert answer.json["status"] == "held"
    assert answer.json["matches"][0]["national_id"] == person.fields["national_id"]
    assert count() == (before[0], before[1] + 1)


# Real name pairs that people write differently: the second is held against the first.
SIMILAR_KHMER = [
    ("សុខ សុភា", "សុខ សុភាព", "Sok Sophea", "Sok Sopheap"),
    ("ចាន់ សុវណ្ណារ៉ា", "ចាន់ សុវណ្ណារា", "Chan Sovannara", "Chan Sovanara"),
    ("ស៊ឹម ស្រីនាង", "ស៊ឹម ស្រីនាង់", "Sim Sreyneang", "Sim Sreyneang"),
    ("គឹម ពិសិដ្ឋ", "គីម ពិសិដ្ឋ", "Kim Piseth", "Kim Pisith"),
]


@pytest.mark.parametrize(("first", "second", "first_latin", "second_latin"), SIMILAR_KHMER)
def test_a_similar_khmer_name_with_the_same_birth_date_is_held(
    session: Any,
    place: Any,
    count: Any,
    first: str,
    second: str,
    first_latin: str,
    second_latin: str,
) -> None:
    clerk = session("clerk1")
    # Somewhere and some day nobody else in the register is likely to share with this pair (the
    # lab keeps its register between test runs).
    person = Person(*random_place(clerk))
    person.fields["date_of_birth"] = (
        f"{Person.rng.randrange(1, 29):02d}/{Person.rng.randrange(1, 13):02d}/"
        f"{Person.rng.randrange(1925, 1940)}"
    )
    stored = register(clerk, person.but(name_km=first, name_latin=first_latin))
    if stored.status == 202:
        pytest.fail(f"the first of the pair was already held: {stored.text}")
    assert stored.status == 201, stored.text
    answer = register(clerk, person.new_id(name_km=second, name_latin=second_latin + "x"))
    assert answer.status == 202, answer.text
    assert answer.json["matches"][0]["name_km"] == first


def test_a_different_name_with_the_same_birth_date_is_stored(session: Any, place: Any) -> None:
    clerk = session("clerk1")
    person = Person(*place)
    assert register(clerk, person.fields).status == 201
    other = person.new_id(
        name_km=f"{khmer_word(Person.rng, 2)} {khmer_word(Person.rng)}",
        name_latin=f"{latin_word(Person.rng)} {latin_word(Person.rng)}",
    )
    assert register(clerk, other).status == 201


def bad_inputs(place: tuple[str, str]) -> list[tuple[str, dict[str, Any], str, int]]:
    """(what, fields, field named in the answer, status): at least thirty kinds of bad input."""
    commune, station = place
    other_station = f"{int(commune) + 1:06d}-01"
    cases: list[tuple[str, dict[str, Any], str, int]] = [
        ("ID too short", {"national_id": "12345678"}, "national_id", 422),
        ("ID too long", {"national_id": "1234567890"}, "national_id", 422),
        ("ID with a letter", {"national_id": "12345678A"}, "national_id", 422),
        ("ID empty", {"national_id": ""}, "national_id", 422),
        ("ID a number, not text", {"national_id": 123456789}, "national_id", 422),
        ("Khmer name missing", {"name_km": None}, "name_km", 422),
        ("Khmer name in Latin letters", {"name_km": "Sok Sophea"}, "name_km", 422),
        ("Khmer name with digits", {"name_km": "សុខ ១២"}, "name_km", 422),
        ("Khmer name starting with a vowel sign", {"name_km": "ុសខ"}, "name_km", 422),
        ("Khmer name only invisible characters", {"name_km": "\u200b\u200b"}, "name_km", 422),
        ("Khmer name too long", {"name_km": "ក" * 81}, "name_km", 422),
        ("Latin name in Khmer", {"name_latin": "សុខ"}, "name_latin", 422),
        ("Latin name with digits", {"name_latin": "Sok 2"}, "name_latin", 422),
        ("Latin name with markup", {"name_latin": "<b>Sok</b>"}, "name_latin", 422),
        ("sex unknown", {"sex": "X"}, "sex", 422),
        ("sex missing", {"sex": ""}, "sex", 422),
        ("date month first", {"date_of_birth": "03/25/1990"}, "date_of_birth", 422),
        ("date 31 February", {"date_of_birth": "31/02/1990"}, "date_of_birth", 422),
        ("date two-digit year", {"date_of_birth": "05/03/90"}, "date_of_birth", 422),
        ("date Buddhist era", {"date_of_birth": "05/03/2533"}, "date_of_birth", 422),
        ("date in words", {"date_of_birth": "5 March 1990"}, "date_of_birth", 422),
        ("date year first with slashes", {"date_of_birth": "1990/03/05"}, "date_of_birth", 422),
        ("date compact", {"date_of_birth": "05031990"}, "date_of_birth", 422),
        ("date in the future", {"date_of_birth": "01/01/2030"}, "date_of_birth", 422),
        ("too young on the qualifying date", {"date_of_birth": "02/07/2010"}, "date_of_birth", 422),
        ("older than anyone", {"date_of_birth": "01/01/1890"}, "date_of_birth", 422),
        ("commune code malformed", {"commune_code": "12AB"}, "commune_code", 422),
        (
            "commune that does not exist",
            {"commune_code": "999999", "polling_station": "999999-01"},
            "commune_code",
            422,
        ),
        ("station of another commune", {"polling_station": other_station}, "polling_station", 422),
        (
            "station that does not exist",
            {"polling_station": f"{commune}-99"},
            "polling_station",
            422,
        ),
        (
            "village of another commune",
            {"village_code": f"{int(commune) + 1:06d}01"},
            "village_code",
            422,
        ),
        ("unknown field", {"voter_status": "active"}, "voter_status", 422),
    ]
    del station
    return cases


def test_bad_input_is_refused_naming_the_field_and_nothing_is_stored(
    session: Any, place: Any, count: Any
) -> None:
    clerk = session("clerk1")
    cases = bad_inputs(place)
    assert len(cases) >= 30
    before = count()
    wrong = []
    for what, change, field, status in cases:
        fields: dict[str, Any] = Person(*place).fields | change
        fields = {k: v for k, v in fields.items() if v is not None}
        answer = register(clerk, fields)
        if answer.status != status or field not in (answer.json or {}).get("errors", {}):
            wrong.append(f"{what}: {answer.status} {answer.text[:160]}")
    # Bodies that are not a registration at all.
    for what, raw in [
        ("not JSON", "{national_id: 1"),
        ("a list", "[1, 2]"),
        ("invalid UTF-8", '{"name_km": "\xff\xfe"}'),
    ]:
        answer = clerk.post("/api/registrations", raw=raw)
        if answer.status != 400:
            wrong.append(f"{what}: {answer.status} {answer.text[:160]}")
    assert not wrong, "\n".join(wrong)
    assert count() == before


def test_two_simultaneous_registrations_of_one_person_store_one(
    session: Any, place: Any, count: Any
) -> None:
    clerks = [session("clerk1"), session("clerk2")]
    person = Person(*place)
    before = count()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda c: register(c, person.fields), clerks))
    assert sorted(a.status for a in answers) == [201, 409], [a.text for a in answers]
    # The same person under two IDs at once: one stored, one held, never two voters.
    twin = Person(*place)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        answers = list(
            pool.map(
                lambda pair: register(pair[0], pair[1]),
                [(clerks[0], twin.fields), (clerks[1], twin.new_id())],
            )
        )
    assert sorted(a.status for a in answers) == [201, 202], [a.text for a in answers]
    assert count() == (before[0] + 2, before[1] + 1)


def test_a_supervisor_decides_others_holds_and_corrects_others_records(
    session: Any, place: Any, users: Any
) -> None:
    clerk, super1, super2 = session("clerk1"), session("super1"), session("super2")
    person = Person(*place)
    assert register(clerk, person.fields).status == 201
    held = register(clerk, person.new_id(name_latin="Other Spelling")).json["held_id"]
    # A clerk decides nothing; a decision needs a note.
    assert (
        clerk.post(f"/api/held/{held}", json={"decision": "registered", "note": "x"}).status == 403
    )
    assert super1.post(f"/api/held/{held}", json={"decision": "registered"}).status == 422
    decided = super1.post(
        f"/api/held/{held}", json={"decision": "registered", "note": "twins: two ID cards seen"}
    )
    assert decided.status == 200, decided.text
    voter = decided.json["voter_id"]
    again = super2.post(f"/api/held/{held}", json={"decision": "rejected", "note": "late"})
    assert again.status == 409
    # super1 approved that voter: only another supervisor may correct the record.
    change = {"name_latin": "Corrected Spelling", "note": "typo on the form"}
    own = super1.request("PATCH", f"/api/voters/{voter}", json=change)
    assert own.status == 403, own.text
    fixed = super2.request("PATCH", f"/api/voters/{voter}", json=change)
    assert fixed.status == 200, fixed.text
    assert super2.get(f"/api/voters/{voter}").json["name_latin"] == "Corrected Spelling"


def test_two_holds_of_one_person_cannot_both_become_voters(session: Any, place: Any) -> None:
    clerk, super1, super2 = session("clerk1"), session("super1"), session("super2")
    person = Person(*place)
    assert register(clerk, person.fields).status == 201
    first = register(clerk, person.new_id())
    second = register(clerk, person.new_id())
    assert (first.status, second.status) == (202, 202), second.text
    # The second lists the first, which still waits, beside the voter.
    assert first.json["held_id"] in [m.get("held_id") for m in second.json["matches"]]
    note = {"note": "ID cards compared"}
    assert (
        super1.post(
            f"/api/held/{first.json['held_id']}", json={"decision": "registered", **note}
        ).status
        == 200
    )
    again = super2.post(
        f"/api/held/{second.json['held_id']}", json={"decision": "registered", **note}
    )
    assert again.status == 409 and "new matches" in again.text, again.text
    listed = {h["id"]: h for h in super2.get("/api/held").json["held"]}
    shown = [m.get("voter_id") for m in listed[second.json["held_id"]]["matches"]]
    assert len([v for v in shown if v]) == 2, shown


def test_the_audit_trail_records_views_and_changes_and_its_chain_holds(
    session: Any, place: Any
) -> None:
    clerk, auditor = session("clerk1"), session("audit1")
    person = Person(*place)
    voter = register(clerk, person.fields).json["voter_id"]
    assert clerk.get(f"/api/voters/{voter}").status == 200
    assert clerk.get("/api/audit").status == 403
    trail = auditor.get("/api/audit?after=0&verify=1").json
    assert trail["chain"]["first_broken"] is None
    mine = [e for e in trail["entries"] if e["voter_id"] == voter]
    while len(trail["entries"]) == 1000:
        trail = auditor.get(f"/api/audit?after={trail['entries'][-1]['seq']}").json
        mine += [e for e in trail["entries"] if e["voter_id"] == voter]
    assert [e["action"] for e in mine] == ["registration.stored", "voter.viewed"]
    assert {e["actor"] for e in mine} == {"clerk1"}
    assert {e["address"] for e in mine} == {"198.18.2.50"}


def test_the_app_role_cannot_alter_the_audit_trail_or_what_it_does_not_own(sql: Any) -> None:
    for statement in [
        "UPDATE register.audit_entry SET actor = 'x'",
        "DELETE FROM register.audit_entry",
        "TRUNCATE register.audit_entry",
        "INSERT INTO register.voter (national_id) VALUES ('000000001')",
        # Entries only through the register's functions; logins alone by the app's own word.
        "SELECT register.audit_append('os:root', NULL, 'user.added', NULL, NULL, NULL, NULL)",
        "INSERT INTO register.schema_migration VALUES (999, 'x', now(), 'x')",
        "UPDATE register.app_user SET role = 'supervisor'",
        "INSERT INTO register.app_user (name, full_name, role, password_hash) "
        "VALUES ('mallory', 'm', 'supervisor', 'x')",
        "UPDATE register.polling_station SET commune_code = commune_code",
        "UPDATE register.admin_unit SET name_latin = name_latin",
    ]:
        code, out = sql("app1", "db1", statement)
        assert code != 0 and "permission denied" in out, (statement, out)
    code, out = sql("app1", "db1", "SELECT register.audit_login('x', NULL, 'user.added', NULL)")
    assert code != 0 and "logins only" in out, out
    code, out = sql(
        "app1",
        "db1",
        "SET ROLE register_owner; UPDATE register.audit_entry SET actor = 'x' WHERE seq = 1",
        role="register_migrate",
    )
    assert code != 0 and "append-only" in out, out


def test_repeated_failed_logins_lock_the_account(users: Any, ca_file: Path) -> None:
    name, password = users["clerk2"]
    client = office_mod.Office(APP, ca_file)
    try:
        for _ in range(5):
            assert client.post("/api/login", json={"name": name, "password": "wrong"}).status == 401
        locked = client.post("/api/login", json={"name": name, "password": password})
        assert locked.status == 401 and "locked" in locked.text
    finally:
        client.close()
        assert _regapp(f"user unlock {name}").returncode == 0
    fresh = office_mod.Office(APP, ca_file)
    try:
        assert fresh.login(name, password).status == 200
    finally:
        fresh.close()


def test_a_post_without_the_csrf_token_is_refused(session: Any, place: Any, count: Any) -> None:
    clerk = session("clerk1")
    before = count()
    answer = clerk.post("/api/registrations", json=Person(*place).fields, csrf=False)
    assert answer.status == 400 and "csrf_token" in answer.json["errors"]
    assert count() == before


def test_metrics_count_registrations_and_holds(
    session: Any, place: Any, host: Callable[[str], Any], count: Any
) -> None:
    def scrape() -> dict[str, float]:
        text = host("mgmt1").check_output(
            "python3 -c "
            + shlex.quote(
                "import urllib.request; print(urllib.request.urlopen("
                "'http://app1:9200/metrics', timeout=5).read().decode())"
            )
        )
        values: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                values[key] = values.get(key, 0.0) + float(value)
        return values

    before = scrape()
    clerk = session("clerk1")
    person = Person(*place)
    assert register(clerk, person.fields).status == 201
    assert register(clerk, person.new_id()).status == 202
    after = scrape()
    key = 'regapp_registrations_total{outcome="registered"}'
    assert after[key] - before.get(key, 0.0) == 1.0
    assert after["regapp_held_waiting"] == float(_open_holds(host))
    assert after["regapp_register_up"] == 1.0


def _open_holds(host: Callable[[str], Any]) -> int:
    return int(
        host("db1").check_output(
            "runuser -u postgres -- psql -XAt -d register -c "
            + shlex.quote("SELECT count(*) FROM register.held_registration WHERE decision IS NULL")
        )
    )


# A real browser ----------------------------------------------------------------------------

FLOW = Path(__file__).parent / "browser" / "clerk_flow.py"


def test_a_clerk_registers_through_the_form_and_sees_the_duplicate_warning(
    users: Any, place: Any, ca_file: Path, tmp_path: Path, count: Any
) -> None:
    home = tmp_path / "home"
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    subprocess.run(["certutil", "-d", f"sql:{nssdb}", "-N", "--empty-password"], check=True)
    subprocess.run(
        ["certutil", "-d", f"sql:{nssdb}", "-A", "-n", "room-ca", "-t", "C,,", "-i", str(ca_file)],
        check=True,
    )
    person = Person(*place)
    before = count()
    pid = subprocess.run(
        ["podman", "inspect", "--format", "{{.State.Pid}}", lab_mod.container("client1")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    name, password = users["clerk1"]
    spec = {
        "base": APP,
        "user": name,
        "password": password,
        "person": person.fields,
        "twin": person.new_id(),
    }
    done = subprocess.run(
        ["nsenter", f"--net=/proc/{pid}/ns/net", sys.executable, str(FLOW)],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert "error" not in report, report
    assert "Registered: voter #" in report["first"], report["first"]
    assert "Suspected duplicate: held for a supervisor" in report["second"], report["second"]
    assert person.fields["national_id"] in report["second"]
    assert count() == (before[0] + 1, before[1] + 1)
