"""What the command-line modules share: output and failure, and which room and how to reach it."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.text import Text

from roomctl import room as room_mod

F = TypeVar("F", bound=Callable[..., Any])

# Text from inventories and paths is printed as it is (no markup), and never wrapped, so that a
# command in a message can be copied whole.
console = Console(highlight=False, markup=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, markup=False, soft_wrap=True)


def _progress(message: str) -> None:
    console.print(Text.assemble((time.strftime("%H:%M:%S"), "dim"), " ", message))


def _fail(message: str) -> None:
    err.print(Text.assemble(("error:", "bold red"), " ", message))
    sys.exit(1)


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
