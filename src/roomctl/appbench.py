"""Benchmark of the registration app at register sizes (the lab only; it empties the register).

For each size: synthetic voters are generated here, copied to app1 and imported with
`regapp import` (the same command an operator uses), after a bare COPY of the same file for
comparison. Then clerks on client1 (roomctl.office, through fw1 and nginx) register new voters
and search for suspected duplicates, one client and then several at once; latencies are
measured in the client processes.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import json
import secrets
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roomctl import office as office_mod
from roomctl import register as register_mod
from roomctl import room as room_mod

APP_URL = "https://{address}"
REGAPP = "/opt/regapp/current/venv/bin/regapp"
WORK = Path("/var/lib/roomctl/bench")
SEED = 20261204
BENCH_USER = "benchclerk"
COUNT_IMPORTED = "SELECT count(*) FROM register.voter WHERE registered_by = 'import'"
# Where the voters file waits on app1 while it is imported.
REMOTE_DIR = "/var/lib/roomctl-bench"


@dataclass
class LoadFigure:
    voters: int
    rows: int
    baseline_rate: float
    copy_rate: float
    index_seconds: float
    rate: float
    vacuum_seconds: float


@dataclass
class RequestFigure:
    voters: int
    what: str
    clients: int
    requests: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    per_second: float
    statuses: dict[str, int] = field(default_factory=dict)


def _generate(count: int, first_id: int, seed: int, progress: Callable[[str], None]) -> Path:
    from regapp import gazetteer, synthetic

    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / f"voters-{count}-{first_id}-{seed}.copy"
    if path.exists():
        return path
    progress(f"generating {count:,} synthetic voters into {path}")
    units = gazetteer.shipped()
    partial = path.with_suffix(".partial")
    with partial.open("w", encoding="utf-8") as out:
        people = synthetic.voters(
            count, seed=seed, units=units, stations=gazetteer.stations(units), first_id=first_id
        )
        out.writelines(synthetic.copy_rows(people))
    partial.rename(path)
    return path


def _people(count: int, first_id: int, seed: int, stride: int = 1) -> list[Any]:
    """Voters as the generator makes them; every stride-th one (the others are not kept)."""
    from regapp import gazetteer, synthetic

    units = gazetteer.shipped()
    made = synthetic.voters(
        count * stride,
        seed=seed,
        units=units,
        stations=gazetteer.stations(units),
        first_id=first_id,
    )
    return list(itertools.islice(made, 0, None, stride))


def _check(result: Any, what: str) -> str:
    if result.exited != 0:
        raise RuntimeError(f"{what} failed: {(result.stderr or result.stdout).strip()[-800:]}")
    return str(result.stdout)


class AppBench:
    def __init__(
        self, room: room_mod.Room, ssh_config: Path, ca_file: Path, progress: Callable[[str], None]
    ):
        self.room = room
        self.reg = register_mod.Register(room, ssh_config)
        self.app = room.hosts("app_servers")[0].name
        self.url = APP_URL.format(address=room.host(self.app).address)
        self.ca_file = ca_file
        self.progress = progress
        self.password = secrets.token_urlsafe(18)

    def close(self) -> None:
        self.reg.close()

    def regapp(self, args: str, stdin: str | None = None, timeout: float = 3600) -> str:
        return _check(
            self.reg.run(self.app, f"{REGAPP} {args}", stdin=stdin, timeout=timeout),
            f"regapp {args}",
        )

    def prepare(self) -> None:
        self.regapp("gazetteer --lab")
        added = self.reg.run(
            self.app, f"{REGAPP} user add {BENCH_USER} --role clerk", stdin=self.password + "\n"
        )
        if added.exited != 0:
            self.regapp(f"user passwd {BENCH_USER}", stdin=self.password + "\n")

    def voters(self) -> int:
        primary = self.reg.primary(self.reg.status())
        if primary is None:
            raise RuntimeError("no database host runs as primary: see roomctl db status")
        out = _check(
            self.reg.run(
                primary,
                f"runuser -u postgres -- psql -XAtq -d register -c {shlex.quote(COUNT_IMPORTED)}",
            ),
            "counting the voters",
        )
        return int(out.strip() or 0)

    def empty_register(self) -> None:
        primary = self.reg.primary(self.reg.status())
        if primary is None:
            raise RuntimeError("no database host runs as primary: see roomctl db status")
        sql = "TRUNCATE register.voter, register.held_registration"
        _check(
            self.reg.run(
                primary, "runuser -u postgres -- psql -XAtq -d register -c " + shlex.quote(sql)
            ),
            "emptying the lab register",
        )

    def load(self, voters: int) -> LoadFigure:
        local = _generate(voters, 1, SEED, self.progress)
        remote = f"{REMOTE_DIR}/{local.name}"
        self.progress(f"copying {local.stat().st_size / 1e6:.0f} MB to {self.app}")
        # SFTP lands in the administrator's home; root moves it where only root reads it.
        conn = self.reg.connection(self.app)
        conn.put(str(local), local.name)
        _check(self.reg.run(self.app, f"install -d -m 0700 {REMOTE_DIR}"), "making the directory")
        _check(self.reg.run(self.app, f"mv ~{conn.user}/{local.name} {remote}"), "moving the file")
        try:
            self.progress("bare COPY of the same rows, rolled back (baseline)")
            base = json.loads(self.regapp(f"import --baseline {remote}").strip().splitlines()[-1])
            self.empty_register()
            self.progress(f"regapp import of {voters:,} voters (match keys, then key indexes)")
            done = json.loads(self.regapp(f"import {remote}").strip().splitlines()[-1])
        finally:
            self.reg.run(self.app, f"rm -f {remote}")
        copy_rate = done["rows"] / done["copy_seconds"] if done["copy_seconds"] else 0.0
        return LoadFigure(
            voters,
            done["rows"],
            base["rows_per_second"],
            copy_rate,
            done["index_seconds"],
            done["rows_per_second"],
            done["vacuum_seconds"],
        )

    def _clients(self, count: int) -> list[office_mod.Office]:
        clients = []
        for _ in range(count):
            client = office_mod.Office(self.url, self.ca_file)
            client.login(BENCH_USER, self.password)
            clients.append(client)
        return clients

    def _run(self, voters: int, what: str, batches: list[list[dict[str, Any]]]) -> RequestFigure:
        clients = self._clients(len(batches))
        try:
            started = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(len(batches)) as pool:
                results = list(
                    pool.map(
                        lambda pair: pair[0].bench(pair[1]), zip(clients, batches, strict=True)
                    )
                )
            elapsed = time.perf_counter() - started
        finally:
            for client in clients:
                client.close()
        latencies = [value for r in results for value in r["latencies"]]
        statuses: dict[str, int] = {}
        for r in results:
            for status, n in r["statuses"].items():
                statuses[status] = statuses.get(status, 0) + n
        figures = office_mod.percentiles(latencies)
        return RequestFigure(
            voters,
            what,
            len(batches),
            len(latencies),
            figures["p50"],
            figures["p99"],
            figures["max"],
            len(latencies) / elapsed,
            statuses,
        )

    def requests(self, voters: int, count: int, clients: int, offset: int) -> list[RequestFigure]:
        """Registrations of new voters, then duplicate searches for voters already loaded."""
        # New people each run (IDs beyond the loaded ones), so a rerun on the same register
        # measures registrations, not refusals.
        nonce = int(time.time()) % 10_000
        new = _people(count, voters + 1 + (nonce * 16 + offset) * count, SEED + nonce + offset)
        registrations = [
            {
                "method": "POST",
                "path": "/api/registrations",
                "json": {
                    "national_id": v.national_id,
                    "name_km": v.name_km,
                    "name_latin": v.name_latin,
                    "sex": v.sex,
                    "date_of_birth": v.date_of_birth.strftime("%d/%m/%Y"),
                    "commune_code": v.commune_code,
                    "village_code": v.village_code,
                    "polling_station": v.polling_station,
                },
            }
            for v in new
        ]
        # Voters spread over the whole loaded file (the same seed makes the same voters).
        loaded = _people(count, 1, SEED, stride=max(1, voters // count))
        searches = [{"method": "GET", "path": "/api/voters?" + _query(v)} for v in loaded]
        per = max(1, count // clients)
        figures = []
        for what, items in (("registration", registrations), ("duplicate search", searches)):
            batches = [items[i * per : (i + 1) * per] for i in range(clients)]
            self.progress(f"{what}: {per * clients} requests from {clients} client(s) on client1")
            figures.append(self._run(voters, what, batches))
        return figures


def _query(voter: Any) -> str:
    from urllib.parse import urlencode

    return urlencode(
        {"name": voter.name_km, "date_of_birth": voter.date_of_birth.strftime("%d/%m/%Y")}
    )


def run(
    room: room_mod.Room,
    ssh_config: Path,
    ca_file: Path,
    sizes: list[int],
    count: int,
    clients: list[int],
    progress: Callable[[str], None],
    reuse: bool = False,
) -> tuple[list[LoadFigure], list[RequestFigure]]:
    bench = AppBench(room, ssh_config, ca_file, progress)
    loads: list[LoadFigure] = []
    figures: list[RequestFigure] = []
    try:
        bench.prepare()
        for size in sizes:
            if reuse and bench.voters() == size:
                progress(f"the register holds {size:,} voters already: measuring without a load")
            else:
                loads.append(bench.load(size))
            for offset, n in enumerate(clients):
                figures += bench.requests(size, count, n, offset)
    finally:
        bench.close()
    return loads, figures
