"""Pieces of the register's runbooks that need no host."""

from __future__ import annotations

from roomctl.register import WholeInput, _lsn


def test_wal_locations_compare_as_numbers() -> None:
    assert _lsn("1/0") > _lsn("0/FFFFFFFF") > _lsn("0/A") > _lsn(None) == 0
    assert _lsn("not a location") == 0


def test_standard_input_is_handed_over_in_one_read() -> None:
    stream = WholeInput(b"*:*:*:*:secret\nSELECT 1;\n")
    assert stream.read(1) == b"*:*:*:*:secret\nSELECT 1;\n"
    assert stream.read(1) == b""
