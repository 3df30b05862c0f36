"""roomctl app: release the registration app to the app hosts, roll back, show where it stands."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from roomctl import lab as lab_mod
from roomctl import room as room_mod
from roomctl.clioptions import room_options

if TYPE_CHECKING:
    from roomctl.release import Releaser

console = Console(highlight=False, markup=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, markup=False, soft_wrap=True)


def _progress(message: str) -> None:
    console.print(Text.assemble((time.strftime("%H:%M:%S"), "dim"), " ", message))


def _fail(message: str) -> None:
    err.print(Text.assemble(("error:", "bold red"), " ", message))
    sys.exit(1)


def default_ssh_config(inventory: Path) -> Path:
    """The lab's SSH config for the lab inventory, else the operator's own."""
    if inventory.resolve() == room_mod.LAB_INVENTORY.resolve():
        return lab_mod.STATE_DIR / "ssh_config"
    return Path.home() / ".ssh" / "config"


def releaser(
    inventory: Path, ssh_config: Path | None = None, vault_password_file: Path | None = None
) -> Releaser:
    """A Releaser over an inventory's app hosts (the inventory is checked first)."""
    from roomctl import converge as converge_mod
    from roomctl import release as release_mod

    vault = converge_mod.vault_file_for(inventory, vault_password_file)
    room = converge_mod.preflight(inventory, vault)
    return release_mod.Releaser(room, ssh_config or default_ssh_config(inventory), _progress)


@click.group()
@room_options("the app hosts")
@click.pass_context
def app(
    ctx: click.Context, inventory: Path, ssh_config: Path | None, vault_password_file: Path | None
) -> None:
    """The registration app on the app hosts: release, rollback, status (pyinfra)."""
    from roomctl import converge as converge_mod
    from roomctl import release as release_mod

    try:
        ctx.obj = releaser(inventory, ssh_config, vault_password_file)
    except (converge_mod.PreflightError, release_mod.ReleaseError) as error:
        _fail(str(error))
    ctx.call_on_close(ctx.obj.close)


@app.command("release")
@click.option(
    "--source",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    default=room_mod.REPO / "app",
    show_default="app/",
    help="The app's source tree to build the release from.",
)
@click.pass_context
def app_release(ctx: click.Context, source: Path) -> None:
    """Build the app, install it beside the running release, migrate, switch, check; roll back
    on its own if the new release does not answer."""
    from roomctl.release import ReleaseError

    started = time.monotonic()
    try:
        release_id = ctx.obj.release(source)
    except ReleaseError as error:
        _fail(str(error))
    console.print(f"Released {release_id} in {time.monotonic() - started:.0f} s.")


@app.command("rollback")
@click.pass_context
def app_rollback(ctx: click.Context) -> None:
    """Switch back to the previous release (a second rollback returns to this one)."""
    from roomctl.release import ReleaseError

    try:
        release_id = ctx.obj.rollback()
    except ReleaseError as error:
        _fail(str(error))
    console.print(f"Rolled back: {release_id} serves.")


@app.command("status")
@click.pass_context
def app_status(ctx: click.Context) -> None:
    """The releases on each app host, the current and previous one, and the app's health."""
    from roomctl.release import ReleaseError

    try:
        states = ctx.obj.status()
    except ReleaseError as error:
        _fail(str(error))
    table = Table("host", "release", "", "service", "health")
    for state in states:
        for index, release_id in enumerate(reversed(state.releases)):
            mark = (
                "current"
                if release_id == state.current
                else "previous"
                if release_id == state.previous
                else ""
            )
            first = index == 0
            table.add_row(
                state.name if first else "",
                release_id,
                mark,
                state.service if first else "",
                ("ok: " if state.healthy else "failing: ") + state.health if first else "",
            )
        if not state.releases:
            table.add_row(state.name, "(none)", "", state.service, state.health)
    console.print(table)
    if any(not state.healthy for state in states):
        sys.exit(2)
