"""Journals: kept on disk with a cap, and every host's journal reaches mgmt1 over TLS."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from conftest import MANAGED_HOSTS, ROOM_HOSTS
from probes import journal_of, wait_for

from roomctl import room as room_mod


@pytest.mark.parametrize("name", MANAGED_HOSTS)
def test_a_hosts_journal_reaches_mgmt1(
    room: room_mod.Room, host: Callable[[str], Any], name: str
) -> None:
    marker = f"roomctl-probe-{uuid.uuid4().hex[:12]}"
    session = host(name)
    session.run_expect([0], f"logger --tag roomctl-probe {marker}")
    collected = f"/var/log/journal/remote/remote-{room.host(name).address}.journal"
    mgmt1 = host("mgmt1")
    assert wait_for(
        lambda: marker in mgmt1.run(f"journalctl --file {collected} -t roomctl-probe -n 50").stdout,
        30,
    ), f"{marker} from {name} never reached mgmt1:\n{journal_of(session, 'systemd-journal-upload')}"


@pytest.mark.parametrize("name", MANAGED_HOSTS)
def test_the_upload_to_mgmt1_is_tls(host: Callable[[str], Any], name: str) -> None:
    config = host(name).run("systemd-analyze cat-config systemd/journal-upload.conf").stdout
    urls = [line.split("=", 1)[1] for line in config.splitlines() if line.startswith("URL=")]
    assert urls and all(url.startswith("https://") for url in urls), config
    handshake = host(name).run(
        "openssl s_client -brief -verify_return_error -CAfile /etc/roomctl/tls/ca.crt "
        f"-connect {urls[-1].removeprefix('https://')} </dev/null"
    )
    assert handshake.rc == 0 and "Verification: OK" in handshake.stderr, handshake.stderr


@pytest.mark.parametrize("name", ROOM_HOSTS)
def test_the_journal_is_kept_on_disk_within_its_cap(host: Callable[[str], Any], name: str) -> None:
    session = host(name)
    lines = session.run("journalctl -u systemd-journald -o cat --no-pager").stdout.splitlines()
    latest = [line for line in lines if line.startswith("System Journal (")][-1:]
    assert latest, "journald never reported where it keeps the system journal"
    assert latest[0].startswith("System Journal (/var/log/journal/"), latest[0]
    assert "max 512.0M" in latest[0], latest[0]
