"""roomctl: one command line over the room: the lab, converging hosts, checks and benchmarks."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table
from rich.text import Text

from roomctl import lab as lab_mod
from roomctl import room as room_mod
from roomctl.appcli import app
from roomctl.clioptions import room_options

if TYPE_CHECKING:
    from roomctl import register as register_mod
from roomctl.shell import CommandError

# Text from inventories and paths is printed as it is (no markup), and never wrapped, so that a
# command in a message can be copied whole.
console = Console(highlight=False, markup=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, markup=False, soft_wrap=True)


def _progress(message: str) -> None:
    console.print(Text.assemble((time.strftime("%H:%M:%S"), "dim"), " ", message))


def _fail(message: str) -> None:
    err.print(Text.assemble(("error:", "bold red"), " ", message))
    sys.exit(1)


def _short_name(value: str) -> str:
    if not 1 <= len(value) <= 50:
        raise click.BadParameter("give a name of 1 to 50 characters")
    return value


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Show the commands run (secrets masked).")
def main(verbose: bool) -> None:
    """Provision, verify and operate the server room of an election commission."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=err, show_path=False, show_time=False)],
    )
    # SSH libraries report every connection at INFO; only their warnings concern an operator.
    for name in ("paramiko", "invoke", "fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)


# lab ---------------------------------------------------------------------------------------


@main.group()
def lab() -> None:
    """The lab room: every host of the room as a systemd container on this machine."""


@lab.command("up")
def lab_up() -> None:
    """Create (or repair) every lab host, network and key; reuse what is there."""
    started = time.monotonic()
    try:
        states = lab_mod.up(_progress)
    except CommandError as error:
        _fail(str(error))
    bad = {name: state for name, state in states.items() if state not in ("running", "degraded")}
    _progress(f"lab up in {time.monotonic() - started:.1f} s")
    if bad:
        _fail(f"hosts did not boot: {bad}; `podman logs lab-HOST` shows why")


@lab.command("down")
@click.option("--purge", is_flag=True, help="Also remove the lab image, keys and vault.")
def lab_down(purge: bool) -> None:
    """Remove every lab host and network."""
    try:
        lab_mod.down(_progress, purge=purge)
    except CommandError as error:
        _fail(str(error))


@lab.command("status")
def lab_status() -> None:
    """Show each lab host: zone, address, container and systemd state."""
    table = Table(title="Lab hosts")
    for column in ("host", "zone", "address", "container", "systemd"):
        table.add_column(column)
    for host in lab_mod.status():
        table.add_row(host.name, host.zone, host.address, host.container, host.systemd)
    console.print(table)


# converge ----------------------------------------------------------------------------------


@main.command()
@click.argument("target", default="site")
@click.option(
    "-i",
    "--inventory",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    default=room_mod.LAB_INVENTORY,
    show_default="inventory/lab",
    help="The room's inventory directory.",
)
@click.option("--check", is_flag=True, help="Dry run: change nothing, report what would change.")
@click.option("--diff", is_flag=True, help="Show the difference of every changed file.")
@click.option("--limit", help="Only these hosts or groups (Ansible pattern).")
@click.option(
    "--vault-password-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The vault password file (the lab's is found on its own).",
)
@click.option(
    "--profile",
    type=click.Choice(["tuned", "no-mitogen", "stock"]),
    default="tuned",
    show_default=True,
    help="Ansible settings; the others than tuned exist for benchmarks.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write the per-host result to this file.",
)
def converge(
    target: str,
    inventory: Path,
    check: bool,
    diff: bool,
    limit: str | None,
    vault_password_file: Path | None,
    profile: str,
    json_path: Path | None,
) -> None:
    """Bring hosts to their desired state: the whole room (site) or one playbook's group.

    TARGET is site or a playbook name of playbooks/ (firewalls, databases, app, backup, mgmt).
    """
    from roomctl import converge as converge_mod

    try:
        result = converge_mod.converge(
            target,
            inventory=inventory,
            check=check,
            diff=diff,
            limit=limit,
            vault_password_file=vault_password_file,
            profile=profile,
            progress=_progress,
        )
    except (CommandError, converge_mod.PreflightError) as error:
        _fail(str(error))
    converge_mod.print_summary(console, result)
    if json_path:
        converge_mod.write_json(result, json_path)
    if not result.ok:
        sys.exit(2)


# the main job and the tests -----------------------------------------------------------------


@main.command()
def up() -> None:
    """Set up this machine, bring the lab room up, converge it and release the app: the whole
    room, one command."""
    from roomctl import appcli
    from roomctl import converge as converge_mod
    from roomctl import release as release_mod

    started = time.monotonic()
    try:
        lab_mod.up(_progress)
        result = converge_mod.converge("site", inventory=room_mod.LAB_INVENTORY, progress=_progress)
    except (CommandError, converge_mod.PreflightError) as error:
        _fail(str(error))
    converge_mod.print_summary(console, result)
    if not result.ok:
        console.print(f"Lab room up; its converge failed after {time.monotonic() - started:.0f} s.")
        sys.exit(2)
    releaser = appcli.releaser(room_mod.LAB_INVENTORY)
    try:
        release_id = releaser.release()
    except release_mod.ReleaseError as error:
        _fail(f"the room is converged, but the app's release failed: {error}")
    finally:
        releaser.close()
    console.print(
        f"Lab room up, converged and app {release_id} released in"
        f" {time.monotonic() - started:.0f} s."
    )
    app_host = room_mod.load(room_mod.LAB_INVENTORY, lab_mod.STATE_DIR / "vault-pass").hosts(
        "app_servers"
    )[0]
    console.print(
        f"The registration app answers the office zone at https://{app_host.address}/ (client1)."
        f" Its first user: ssh -t -F {lab_mod.STATE_DIR / 'ssh_config'} {app_host.name}"
        " sudo regapp user add NAME --role clerk"
    )


@main.command("test")
@click.argument(
    "groups",
    nargs=-1,
    type=click.Choice(["lint", "unit", "molecule", "lab", "all"]),
)
def test_command(groups: tuple[str, ...]) -> None:
    """Run the project's tests: lint, unit, molecule and lab (all of them by default).

    The lab tests bring the lab up and converge it twice; they leave it up for the next run.
    """
    from roomctl import selftest

    chosen = set(groups) or {"all"}
    if "all" in chosen:
        chosen = {"lint", "unit", "molecule", "lab"}
    step_groups = {g for g in chosen if g in ("lint", "molecule")}
    if chosen & {"unit", "lab"}:
        step_groups.add("pytest")
    if "lab" in chosen:
        step_groups.add("lab")
    try:
        code = selftest.run(step_groups, _progress)
    except CommandError as error:
        _fail(str(error))
    sys.exit(code)


# benchmarks --------------------------------------------------------------------------------


@main.group()
def bench() -> None:
    """Benchmarks that print figures (not part of the tests)."""


@bench.command("converge")
@click.option("--cold/--no-cold", default=False, help="Also time bare lab to converged room.")
@click.option("--runs", default=3, show_default=True, help="Warm runs of each profile.")
@click.option(
    "--profile",
    "profiles",
    multiple=True,
    type=click.Choice(["tuned", "no-mitogen", "stock"]),
    help="Profiles to compare (default: all three).",
)
def bench_converge(cold: bool, runs: int, profiles: tuple[str, ...]) -> None:
    """Time converging the lab room: cold, and warm under each Ansible profile."""
    from roomctl import bench as bench_mod

    figures = []
    if cold:
        figures += bench_mod.cold(_progress)
    figures += bench_mod.warm(runs, list(profiles or ("tuned", "no-mitogen", "stock")), _progress)
    table = Table(title=f"Converge benchmark of the lab room, {time.strftime('%Y-%m-%d %H:%M')}")
    for column in ("what", "median s", "runs s", "settings"):
        table.add_column(column)
    for figure in figures:
        runs_text = " ".join(f"{value:.1f}" for value in figure.seconds)
        table.add_row(figure.what, f"{figure.median:.1f}", runs_text, figure.note)
    console.print(table)


@bench.command("app")
@click.option(
    "--voters",
    "sizes",
    multiple=True,
    type=int,
    default=[1_000_000, 10_000_000],
    show_default=True,
    help="Register sizes to load and measure at (repeat).",
)
@click.option(
    "--requests",
    "count",
    default=2000,
    show_default=True,
    help="Registrations, and searches, per measurement.",
)
@click.option(
    "--clients",
    multiple=True,
    type=int,
    default=[1, 8],
    show_default=True,
    help="Concurrent clients on client1 (repeat).",
)
@click.option(
    "--reuse",
    is_flag=True,
    help="Measure without loading when the register already holds that many imported voters.",
)
def bench_app(sizes: tuple[int, ...], count: int, clients: tuple[int, ...], reuse: bool) -> None:
    """The registration app at register sizes: bulk load, registrations, duplicate searches.

    Lab only: it empties the lab register before each load.
    """
    from roomctl import appbench, register

    room = room_mod.load(room_mod.LAB_INVENTORY, lab_mod.STATE_DIR / "vault-pass")
    reg = register.Register(room, lab_mod.STATE_DIR / "ssh_config")
    ca_file = appbench.WORK / "ca.crt"
    appbench.WORK.mkdir(parents=True, exist_ok=True)
    ca_file.write_text(
        reg.run(room.hosts("app_servers")[0].name, "cat /etc/roomctl/tls/ca.crt").stdout
    )
    reg.close()
    try:
        loads, figures = appbench.run(
            room,
            lab_mod.STATE_DIR / "ssh_config",
            ca_file,
            list(sizes),
            count,
            list(clients),
            _progress,
            reuse,
        )
    except (RuntimeError, register.RunbookError) as error:
        _fail(str(error))
    stamp = time.strftime("%Y-%m-%d %H:%M")
    table = Table(title=f"Bulk load into the register (regapp import on app1), {stamp}")
    for column in (
        "voters",
        "bare COPY rows/s",
        "COPY with keys rows/s",
        "key indexes s",
        "load rows/s (keys + indexes)",
        "vacuum s (after)",
    ):
        table.add_column(column)
    for load in loads:
        table.add_row(
            f"{load.voters:,}",
            f"{load.baseline_rate:,.0f}",
            f"{load.copy_rate:,.0f}",
            f"{load.index_seconds:.1f}",
            f"{load.rate:,.0f}",
            f"{load.vacuum_seconds:.1f}",
        )
    console.print(table)
    table = Table(title=f"Requests from client1 through fw1 to app1 over HTTPS, {stamp}")
    for column in (
        "voters",
        "what",
        "clients",
        "requests",
        "p50 ms",
        "p99 ms",
        "max ms",
        "per s",
        "answers",
    ):
        table.add_column(column)
    for f in figures:
        table.add_row(
            f"{f.voters:,}",
            f.what,
            str(f.clients),
            str(f.requests),
            f"{f.p50_ms:.1f}",
            f"{f.p99_ms:.1f}",
            f"{f.max_ms:.1f}",
            f"{f.per_second:.0f}",
            " ".join(f"{k}:{v}" for k, v in sorted(f.statuses.items())),
        )
    console.print(table)


@bench.command("register")
@click.option("--seconds", default=20, show_default=True, help="Length of each write run.")
@click.option("--clients", default=4, show_default=True, help="pgbench client connections.")
@click.option("--scale", default=10, show_default=True, help="pgbench scale of the scratch data.")
def bench_register(seconds: int, clients: int, scale: int) -> None:
    """Write throughput with synchronous and asynchronous commits, and the standby's lag."""
    from roomctl import bench as bench_mod
    from roomctl import register

    room = room_mod.load(room_mod.LAB_INVENTORY, lab_mod.STATE_DIR / "vault-pass")
    reg = register.Register(room, lab_mod.STATE_DIR / "ssh_config", progress=_progress)
    try:
        figures = bench_mod.register(reg, seconds, clients, scale, _progress)
    except (RuntimeError, register.RunbookError) as error:
        _fail(str(error))
    finally:
        reg.close()
    table = Table(
        title=f"Register benchmark (pgbench -N, {clients} clients, {seconds} s each, scale"
        f" {scale}), {time.strftime('%Y-%m-%d %H:%M')}"
    )
    for column in (
        "commits",
        "tps",
        "latency ms",
        "lag median ms",
        "lag max ms",
        "lag max bytes",
        "samples",
    ):
        table.add_column(column)
    for f in figures:
        table.add_row(
            f.mode,
            f"{f.tps:.0f}",
            f"{f.latency_ms:.2f}",
            f"{f.lag_median_ms:.1f}",
            f"{f.lag_max_ms:.1f}",
            str(f.lag_max_bytes),
            str(f.samples),
        )
    console.print(table)


# inventory and vault -----------------------------------------------------------------------


# the voter register ------------------------------------------------------------------------


@main.group()
@room_options("the room's hosts")
@click.pass_context
def db(
    ctx: click.Context, inventory: Path, ssh_config: Path | None, vault_password_file: Path | None
) -> None:
    """Runbooks of the voter register: status, switchover, failover, rejoin, sync, async."""
    from roomctl import converge as converge_mod
    from roomctl import register

    if ssh_config is None:
        if inventory.resolve() == room_mod.LAB_INVENTORY.resolve():
            ssh_config = lab_mod.STATE_DIR / "ssh_config"
        else:
            ssh_config = Path.home() / ".ssh" / "config"
    room = room_mod.load(inventory, converge_mod.vault_file_for(inventory, vault_password_file))
    ctx.obj = register.Register(room, ssh_config, progress=_progress)
    ctx.call_on_close(ctx.obj.close)


def _print_report(title: str, report: register_mod.Report) -> None:
    console.print(Text(title, style="bold"))
    for step in report.steps:
        console.print(f"  - {step}")
    for name, value in report.figures.items():
        console.print(f"  {name.replace('_', ' ')}: {value:.2f}")


def _runbook(ctx: click.Context, title: str, action: str, *args: object) -> None:
    from roomctl.register import RunbookError

    try:
        report = getattr(ctx.obj, action)(*args)
    except RunbookError as error:
        _fail(str(error))
    _print_report(title, report)


@db.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the raw status as JSON.")
@click.pass_context
def db_status(ctx: click.Context, as_json: bool) -> None:
    """Each database host's part in the register, and the recorded primary."""
    import json

    statuses = ctx.obj.status()
    record = ctx.obj.record()
    if as_json:
        console.print_json(json.dumps({"record": record, "hosts": statuses}))
        return
    table = Table("host", "role", "timeline", "follows", "replicas", "synchronous")
    for name, status in statuses.items():
        replicas = ", ".join(
            f"{r['name']} {r['state']}/{r['sync_state']} lag {r['replay_lag_s']:.3f}s"
            for r in status.get("replicas", [])
        )
        table.add_row(
            name,
            str(status.get("role")),
            str(status.get("timeline", "")),
            str(status.get("following") or ""),
            replicas,
            str(status.get("synchronous_standby_names", "")),
        )
    console.print(table)
    console.print(
        f"recorded primary: {record.get('primary', 'none')} "
        f"({record.get('event', '')}, {record.get('at', '')})"
    )


@db.command("switchover")
@click.option("--to", "target", help="The standby to promote (the first streaming one if unset).")
@click.pass_context
def db_switchover(ctx: click.Context, target: str | None) -> None:
    """Hand the primary's role to a standby, losing no committed row."""
    _runbook(ctx, "switchover", "switchover", target)


@db.command("failover")
@click.option("--to", "target", help="The standby to promote (the first running one if unset).")
@click.option("--force", is_flag=True, help="Even if the primary still answers: fence it.")
@click.pass_context
def db_failover(ctx: click.Context, target: str | None, force: bool) -> None:
    """Promote a standby when the primary is dead, and fence the old primary."""
    _runbook(ctx, "failover", "failover", target, force)


@db.command("rejoin")
@click.argument("host")
@click.pass_context
def db_rejoin(ctx: click.Context, host: str) -> None:
    """Bring a fenced old primary back as a standby of the current primary (pg_rewind)."""
    _runbook(ctx, f"rejoin {host}", "rejoin", host)


@db.command("fence")
@click.argument("host")
@click.pass_context
def db_fence(ctx: click.Context, host: str) -> None:
    """Stop a host from taking writes, e.g. the wrong one of two primaries."""
    _runbook(ctx, f"fence {host}", "fence", host)


@db.command("resume")
@click.argument("host")
@click.pass_context
def db_resume(ctx: click.Context, host: str) -> None:
    """Let the recorded primary take writes after its guard held it read-only."""
    _runbook(ctx, f"resume {host}", "resume", host)


@db.command("async")
@click.pass_context
def db_async(ctx: click.Context) -> None:
    """Stop waiting for a standby on each commit (when the standby is lost); logged."""
    _runbook(ctx, "asynchronous", "set_sync", False)


@db.command("sync")
@click.pass_context
def db_sync(ctx: click.Context) -> None:
    """Wait for a standby on every commit again, once one streams."""
    _runbook(ctx, "synchronous", "set_sync", True)


@main.command("check-inventory")
@click.argument(
    "inventory",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    default=room_mod.LAB_INVENTORY,
)
@click.option("--vault-password-file", type=click.Path(path_type=Path, dir_okay=False))
def check_inventory(inventory: Path, vault_password_file: Path | None) -> None:
    """Check an inventory without touching any host: groups, zones, flows, secrets."""
    from roomctl import converge as converge_mod

    try:
        vault_file = converge_mod.vault_file_for(inventory, vault_password_file)
        converge_mod.preflight(inventory, vault_file)
    except converge_mod.PreflightError as error:
        _fail(str(error))
    console.print(Text.assemble(f"{inventory}: ", ("inventory is sound", "green")))


@main.command("vault-init")
@click.argument("inventory", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option(
    "--vault-password-file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    required=True,
    help="A file holding the new vault's password, kept outside the repository.",
)
@click.option(
    "--room-name",
    default="Room",
    type=click.STRING,
    callback=lambda _ctx, _param, value: _short_name(value),
    help="Name shown in the room CA's certificate (at most 50 characters).",
)
@click.option(
    "--add-missing",
    is_flag=True,
    help="Keep the existing vault and add only the generated secrets it lacks.",
)
def vault_init(
    inventory: Path, vault_password_file: Path, room_name: str, add_missing: bool
) -> None:
    """Create an inventory's encrypted vault: a new room CA and the database passwords."""
    from roomctl import secrets

    try:
        if add_missing:
            added = secrets.add_missing(inventory, vault_password_file)
            console.print(f"added {', '.join(added)}" if added else "the vault lacks nothing")
            return
        path = secrets.init_vault(inventory, vault_password_file, room_name)
    except (FileExistsError, ValueError, FileNotFoundError) as error:
        _fail(str(error))
    console.print(f"wrote {path} (encrypted)")


main.add_command(app)

if __name__ == "__main__":
    main()
