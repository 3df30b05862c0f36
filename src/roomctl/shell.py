"""Running the commands this tool drives (podman, apt-get, ssh), with one way to log and fail."""

from __future__ import annotations

import logging
import shlex
import subprocess
from collections.abc import Sequence

log = logging.getLogger(__name__)


class CommandError(RuntimeError):
    """A command failed; the message carries its output and, where known, what to do next."""


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    input_text: str | None = None,
    hint: str = "",
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run argv, capture its output, and raise CommandError with a hint when it fails."""
    log.debug("run: %s", shlex.join(argv))
    try:
        result = subprocess.run(
            list(argv),
            input=input_text,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
    except FileNotFoundError as error:
        raise CommandError(f"{argv[0]} is not installed. {hint}".strip()) from error
    if check and result.returncode != 0:
        output = (result.stderr or result.stdout).strip()
        message = f"{shlex.join(argv)} failed (exit {result.returncode}):\n{output}"
        if hint:
            message += f"\n{hint}"
        raise CommandError(message)
    return result


def output(argv: Sequence[str], **kwargs: object) -> str:
    """Run argv and return its standard output, stripped."""
    return run(argv, **kwargs).stdout.strip()  # type: ignore[arg-type]
