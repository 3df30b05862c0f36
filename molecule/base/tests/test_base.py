"""What a host converged with the base role does, checked from the host itself.

Testinfra reaches the host as Ansible does (SSH as ops, sudo to root). SSH logins under test are
opened from inside the host, to 127.0.0.1 and to its room address, with the throwaway private
keys that prepare.yml copied to /root/molecule-keys. Tests marked `destructive` change the host
and put it back as it was, so `molecule verify` can be run again on the same instance.
"""

from __future__ import annotations

import shlex
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

KEYS = "/root/molecule-keys"
# Accounts named in molecule.yml's room_admins; ops is also the account Ansible logs in with.
ADMINS = ["ops", "molecule-admin"]
BREAKGLASS = "breakglass"
INTEGRITY = "/usr/local/sbin/roomctl-integrity"
SUDOERS_MANAGED = "/etc/sudoers.d/10-roomctl"
SUDOERS_PLANTED = "/etc/sudoers.d/molecule-planted"
TLS_DIR = "/etc/roomctl/tls"
# Linux capability number of CAP_SYS_TIME (linux/capability.h).
CAP_SYS_TIME = 25


def ssh(key: str, user: str, address: str, command: str, *extra: str) -> str:
    """Return a shell command that logs in to the host from itself and runs `command`.

    With a key, the login is non-interactive (BatchMode); without one, `extra` says how to
    authenticate instead. A refused login exits 1: ssh's own 255 would read to testinfra as a
    failure of its connection to the host.
    """
    options = [
        "-o", "StrictHostKeyChecking=no",
        "-o", "UserKnownHostsFile=/dev/null",
        "-o", "IdentitiesOnly=yes",
        "-o", "ConnectTimeout=5",
        "-o", "LogLevel=ERROR",
    ]  # fmt: skip
    if key:
        options += ["-o", "BatchMode=yes", "-i", f"{KEYS}/{key}"]
    return shlex.join(["ssh", *options, *extra, f"{user}@{address}", command]) + " || exit 1"


def unit_journal(host: Any, unit: str) -> str:
    """Return the last lines of a unit's journal, to explain a failed service check."""
    return host.run("journalctl --no-pager --lines=30 --unit=%s", unit).stdout


def apt_settings(host: Any) -> list[str]:
    """Return apt's effective configuration, one `Key "value";` line each."""
    return host.check_output("apt-config dump").splitlines()


@pytest.fixture(scope="module")
def room_address(host: Any) -> str:
    """The host's address in the room (ansible_host in the scenario's inventory)."""
    return str(host.ansible.get_variables()["ansible_host"])


@pytest.fixture(scope="module")
def breakglass_from(host: Any) -> str:
    """The one address the break-glass key is accepted from (the host's own, in this scenario)."""
    return str(host.ansible.get_variables()["room_breakglass_from"])


@pytest.fixture
def admin_with_password(host: Any) -> Iterator[tuple[str, str]]:
    """Give molecule-admin a known password for the test, then put its old password field back."""
    user = "molecule-admin"
    password = uuid.uuid4().hex
    old_hash = host.check_output("getent shadow %s | cut -d: -f2", user)
    host.run_expect([0], "printf '%%s:%%s\\n' %s %s | chpasswd", user, password)
    try:
        yield user, password
    finally:
        host.run_expect([0], "usermod --password %s %s", old_hash, user)


@pytest.fixture
def outsider(host: Any) -> Iterator[str]:
    """An account outside the admin group, holding molecule-admin's authorised key."""
    user = "molecule-outsider"
    host.run_expect([0], "useradd --create-home --shell /bin/bash %s", user)
    try:
        host.run_expect(
            [0],
            f"install -d -m 0700 -o {user} -g {user} /home/{user}/.ssh && "
            f"ssh-keygen -y -f {KEYS}/molecule-admin > /home/{user}/.ssh/authorized_keys && "
            f"chown {user}:{user} /home/{user}/.ssh/authorized_keys",
        )
        yield user
    finally:
        host.run_expect([0], "userdel --remove %s", user)


@contextmanager
def tampered_sudoers(host: Any, how: str) -> Iterator[str]:
    """Change the sudoers directory as an intruder would, and undo it on leaving.

    `edit` appends a line to the role's own file; `plant` adds a file granting a new account
    sudo. Both leave sudoers valid, so the sudo these tests run under keeps working. Yields the
    path changed.
    """
    backup = "/root/molecule-sudoers-backup"
    if how == "edit":
        host.run_expect([0], "cp -p %s %s", SUDOERS_MANAGED, backup)
        host.run_expect([0], "echo '# molecule: tampered' >> %s", SUDOERS_MANAGED)
        path = SUDOERS_MANAGED
    else:
        rule = "molecule-planted ALL=(ALL) NOPASSWD: ALL"
        host.run_expect([0], "echo %s | install -m 0440 /dev/stdin %s", rule, SUDOERS_PLANTED)
        path = SUDOERS_PLANTED
    try:
        yield path
    finally:
        if how == "edit":
            # Written back in place: owner, mode and content as recorded in the baseline.
            host.run_expect([0], "cat %s > %s && rm %s", backup, SUDOERS_MANAGED, backup)
        else:
            host.run_expect([0], "rm -f %s", SUDOERS_PLANTED)


# --- the host as a whole ---------------------------------------------------------------------


def test_no_unit_failed(host: Any) -> None:
    state = host.run("systemctl is-system-running").stdout.strip()
    failed = host.run("systemctl --failed --no-pager").stdout
    assert state == "running", f"expected systemd state running, got {state}:\n{failed}"


def test_container_cannot_set_the_shared_clock(host: Any) -> None:
    bounding = int(host.check_output("awk '/^CapBnd/ {print $2}' /proc/1/status"), 16)
    assert not bounding & (1 << CAP_SYS_TIME), "the host may set the clock it shares with the lab"


# --- SSH ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keyword", "value"),
    [
        ("passwordauthentication", "no"),
        ("kbdinteractiveauthentication", "no"),
        ("permitrootlogin", "no"),
        ("authenticationmethods", "publickey"),
    ],
)
def test_ssh_server_setting(host: Any, keyword: str, value: str) -> None:
    effective = [line.split(" ", 1) for line in host.check_output("sshd -T").splitlines()]
    values = [v for k, v in effective if k == keyword]
    assert values == [value], f"expected sshd -T to report {keyword} {value}, got {values}"


def test_administrator_logs_in_with_key(host: Any) -> None:
    result = host.run(ssh("molecule-admin", "molecule-admin", "127.0.0.1", "id -un"))
    assert result.rc == 0, f"key login refused: {result.stderr}"
    assert result.stdout.strip() == "molecule-admin"


@pytest.mark.destructive
def test_password_login_is_refused(host: Any, admin_with_password: tuple[str, str]) -> None:
    user, password = admin_with_password
    askpass = "/root/molecule-askpass"
    script = f"#!/bin/sh\necho {password}\n"
    host.run_expect([0], "printf %s > %s && chmod 0700 %s", script, askpass, askpass)
    try:
        # SSH_ASKPASS_REQUIRE=force: ssh answers any password prompt itself, with no terminal.
        login = ssh(
            "", user, "127.0.0.1", "true",
            "-o", "PubkeyAuthentication=no",
            "-o", "PreferredAuthentications=password,keyboard-interactive",
        )  # fmt: skip
        result = host.run(f"SSH_ASKPASS={askpass} SSH_ASKPASS_REQUIRE=force {login}")
    finally:
        host.run_expect([0], "rm -f %s", askpass)
    assert result.rc != 0, "a password login was accepted"
    assert "Permission denied (publickey)." in result.stderr, (
        f"expected the server to offer publickey only, got: {result.stderr.strip()}"
    )


@pytest.mark.destructive
def test_account_outside_admin_group_cannot_log_in(host: Any, outsider: str) -> None:
    result = host.run(ssh("molecule-admin", outsider, "127.0.0.1", "true"))
    assert result.rc != 0, f"{outsider} logged in with an authorised key but no admin group"
    assert "Permission denied" in result.stderr


def test_breakglass_key_refused_from_another_address(host: Any) -> None:
    # From inside the host to 127.0.0.1 the source is 127.0.0.1, not room_breakglass_from.
    result = host.run(ssh("molecule-breakglass", BREAKGLASS, "127.0.0.1", "true"))
    assert result.rc != 0, "the break-glass key was accepted from 127.0.0.1"
    assert "Permission denied (publickey)." in result.stderr


def test_breakglass_key_accepted_from_its_address(
    host: Any, room_address: str, breakglass_from: str
) -> None:
    assert room_address == breakglass_from, "the scenario must log in from room_breakglass_from"
    result = host.run(ssh("molecule-breakglass", BREAKGLASS, room_address, "id -un"))
    assert result.rc == 0, f"break-glass key refused from {breakglass_from}: {result.stderr}"
    assert result.stdout.strip() == BREAKGLASS


def test_breakglass_use_is_logged_as_alert(host: Any, room_address: str) -> None:
    marker = f"molecule-{uuid.uuid4().hex}"
    host.run_expect([0], ssh("molecule-breakglass", BREAKGLASS, room_address, f"true {marker}"))
    host.run_expect([0], "journalctl --sync")
    logged = host.check_output(
        "journalctl --no-pager --output=cat --identifier=breakglass --priority=alert --grep=%s",
        marker,
    )
    expected = f"BREAK-GLASS key used on {host.check_output('hostname')} from {room_address}"
    assert expected in logged, f"expected '{expected}' in the journal, got: {logged!r}"


# --- sudo -----------------------------------------------------------------------------------


@pytest.mark.parametrize("user", [*ADMINS, BREAKGLASS])
def test_sudo_without_password(host: Any, user: str) -> None:
    result = host.run("runuser -u %s -- sudo --non-interactive true", user)
    assert result.rc == 0, f"{user} cannot sudo without a password: {result.stderr.strip()}"


@pytest.mark.parametrize("user", ADMINS)
def test_sudo_grants_all_without_password(host: Any, user: str) -> None:
    rules = host.check_output("sudo --list --other-user=%s", user)
    assert "(ALL : ALL) NOPASSWD: ALL" in rules, f"sudo -l -U {user} said:\n{rules}"


@pytest.mark.destructive
def test_account_outside_admin_group_cannot_sudo(host: Any, outsider: str) -> None:
    result = host.run("runuser -u %s -- sudo --non-interactive true", outsider)
    assert result.rc != 0, f"{outsider} used sudo without being an administrator"


# --- file integrity -------------------------------------------------------------------------


def test_integrity_check_passes_on_the_converged_host(host: Any) -> None:
    result = host.run(f"{INTEGRITY} check")
    assert result.rc == 0, f"integrity check failed on an untouched host:\n{result.stdout}"


@pytest.mark.destructive
@pytest.mark.parametrize("how", ["edit", "plant"])
def test_integrity_check_names_tampered_sudoers_file(host: Any, how: str) -> None:
    with tampered_sudoers(host, how) as path:
        result = host.run(f"{INTEGRITY} check")
    assert result.rc != 0, f"integrity check passed with {path} tampered ({how})"
    assert path in result.stdout, f"integrity check did not name {path}:\n{result.stdout}"


@pytest.mark.destructive
@pytest.mark.parametrize("how", ["edit", "plant"])
def test_integrity_check_passes_once_sudoers_restored(host: Any, how: str) -> None:
    with tampered_sudoers(host, how):
        pass
    result = host.run(f"{INTEGRITY} check")
    assert result.rc == 0, f"integrity check still fails after undoing the {how}:\n{result.stdout}"


def test_integrity_check_is_scheduled(host: Any) -> None:
    timer = host.service("roomctl-integrity-check.timer")
    assert timer.is_running, unit_journal(host, "roomctl-integrity-check.timer")


# --- journal --------------------------------------------------------------------------------


def test_journal_is_kept_on_disk(host: Any) -> None:
    marker = f"molecule-{uuid.uuid4().hex}"
    host.run_expect([0], "logger --tag molecule-probe %s && journalctl --sync", marker)
    # --directory reads the files on disk only, not journald's volatile runtime journal.
    on_disk = host.run(
        "journalctl --no-pager --output=cat --directory=/var/log/journal --identifier=%s",
        "molecule-probe",
    ).stdout
    assert marker in on_disk, "a logged message did not reach /var/log/journal" + (
        "\n" + unit_journal(host, "systemd-journald.service")
    )


# --- time -----------------------------------------------------------------------------------


def test_chrony_answers(host: Any) -> None:
    result = host.run("chronyc tracking")
    assert result.rc == 0 and "Reference ID" in result.stdout, (
        f"chronyc tracking failed: {result.stderr}\n{unit_journal(host, 'chrony.service')}"
    )


def test_chronyd_never_sets_the_clock(host: Any) -> None:
    arguments = host.check_output("ps -o args= -C chronyd").splitlines()
    assert arguments, "chronyd is not running\n" + unit_journal(host, "chrony.service")
    assert all("-x" in line.split() for line in arguments), f"chronyd runs as {arguments}"


def test_control_node_serves_time_to_the_room(host: Any, room_address: str) -> None:
    # One SNTP client packet (version 4, mode 3) to the host's room address, from the host.
    query = (
        "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5); "
        f"s.sendto(b'\\x23' + bytes(47), ('{room_address}', 123)); "
        "r = s.recv(48); print(r[0] >> 6, r[1])"
    )
    result = host.run("python3 -c %s", query)
    assert result.rc == 0, f"no NTP answer from {room_address}: {result.stderr}"
    leap, stratum = (int(field) for field in result.stdout.split())
    assert leap != 3, "chronyd answers, but as unsynchronised"
    assert stratum == 8, f"expected the offline room's local stratum 8, got {stratum}"


# --- TLS ------------------------------------------------------------------------------------


def test_host_certificate_is_trusted_through_the_system_store(host: Any) -> None:
    # No -CAfile: the room CA must have reached the system's trusted certificates.
    result = host.run("openssl verify %s/host.crt", TLS_DIR)
    assert result.rc == 0, f"host certificate not trusted: {result.stdout}{result.stderr}"


def test_host_certificate_names_the_room_address(host: Any, room_address: str) -> None:
    names = host.check_output("openssl x509 -in %s/host.crt -noout -ext subjectAltName", TLS_DIR)
    assert f"IP Address:{room_address}" in names, f"certificate names: {names}"


def test_host_certificate_matches_the_host_key(host: Any) -> None:
    from_certificate = host.check_output("openssl x509 -in %s/host.crt -noout -pubkey", TLS_DIR)
    from_key = host.check_output("openssl pkey -in %s/host.key -pubout", TLS_DIR)
    assert from_certificate == from_key


def test_host_key_is_unreadable_to_other_accounts(host: Any) -> None:
    result = host.run("runuser -u nobody -- cat %s/host.key", TLS_DIR)
    assert result.rc != 0, "an unprivileged account read the host's private key"


# --- automatic updates ----------------------------------------------------------------------


@pytest.mark.parametrize("pattern", ["^postgresql", "^nginx", "^nut"])
def test_automatic_updates_skip_room_services(host: Any, pattern: str) -> None:
    entry = f'Unattended-Upgrade::Package-Blacklist:: "{pattern}";'
    assert entry in apt_settings(host), f"apt-config dump lacks {entry}"


def test_automatic_updates_never_reboot(host: Any) -> None:
    assert 'Unattended-Upgrade::Automatic-Reboot "false";' in apt_settings(host)


def test_automatic_updates_take_security_updates_only(host: Any) -> None:
    key = "Unattended-Upgrade::Origins-Pattern::"
    origins = [line for line in apt_settings(host) if line.startswith(key)]
    assert origins, "no origins configured for automatic updates"
    assert all("-security" in line for line in origins), f"origins: {origins}"


def test_automatic_updates_run_daily(host: Any) -> None:
    settings = apt_settings(host)
    assert 'APT::Periodic::Update-Package-Lists "1";' in settings
    assert 'APT::Periodic::Unattended-Upgrade "1";' in settings
