"""The voter registration app of the room: a thin web app on the register.

The register itself (PostgreSQL) decides what is stored: duplicates by national ID are refused,
suspected duplicates are held for a supervisor, and every change and view is audited there.
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path


def version() -> str:
    try:
        return metadata.version("regapp")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def release_id() -> str:
    """The release this process runs: the RELEASE file beside the virtual environment."""
    marker = Path(sys.prefix).parent / "RELEASE"
    try:
        return marker.read_text(encoding="utf-8").strip() or version()
    except OSError:
        return version()
