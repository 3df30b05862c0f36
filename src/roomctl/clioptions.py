"""Options that every command group acting on a room's hosts shares: which room, how to reach it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from roomctl import room as room_mod

F = TypeVar("F", bound=Callable[..., Any])


def room_options(what: str) -> Callable[[F], F]:
    """--inventory, --ssh-config, --vault-password-file; what: the hosts the SSH config reaches."""

    def wrap(command: F) -> F:
        command = click.option(
            "--vault-password-file",
            type=click.Path(path_type=Path, dir_okay=False),
            help="The vault password file (the lab's is found on its own).",
        )(command)
        command = click.option(
            "--ssh-config",
            type=click.Path(path_type=Path, dir_okay=False, exists=True),
            help=f"SSH config that reaches {what} (the lab's is found on its own).",
        )(command)
        return click.option(
            "-i",
            "--inventory",
            type=click.Path(path_type=Path, exists=True, file_okay=False),
            default=room_mod.LAB_INVENTORY,
            show_default="inventory/lab",
            help="The room's inventory directory.",
        )(command)

    return wrap
