"""A private Dovecot IMAP server for the tests: own config, own port, own Maildir."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from imapclient import IMAPClient

from tests.support.services import free_port, services_required

TEST_USER = "tester"
TEST_PASSWORD = "t3st-Passw0rd"


@dataclass(frozen=True)
class DovecotServer:
    host: str
    port: int
    user: str
    password: str
    root: Path

    @property
    def url(self) -> str:
        """The TICKETGW_IMAP_URL form."""
        return f"imap://{self.user}:{self.password}@{self.host}:{self.port}/INBOX"

    def client(self) -> IMAPClient:
        """A logged-in client; the caller logs out (or uses it as a context manager)."""
        client = IMAPClient(self.host, port=self.port, ssl=False, timeout=10)
        client.login(self.user, self.password)
        return client

    def append(self, raw: bytes, folder: str = "INBOX", flags: tuple[bytes, ...] = ()) -> None:
        """Put one raw message into `folder` (created if missing), unseen unless flagged."""
        with self.client() as client:
            if folder != "INBOX" and not client.folder_exists(folder):
                client.create_folder(folder)
            client.append(folder, raw, flags=flags)

    def clear(self, folder: str = "INBOX") -> None:
        """Delete every message in `folder`."""
        with self.client() as client:
            client.select_folder(folder)
            ids = client.search("ALL")
            if ids:
                client.delete_messages(ids)
                client.expunge()

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _unavailable(message: str) -> None:
    if services_required():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _dovecot_binary() -> str:
    binary = shutil.which("dovecot") or (
        "/usr/sbin/dovecot" if os.path.exists("/usr/sbin/dovecot") else None
    )
    if binary is None and services_required() and os.geteuid() == 0:
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "dovecot-imapd", "dovecot-core"],
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            capture_output=True,
            timeout=600,
        )
        binary = shutil.which("dovecot") or (
            "/usr/sbin/dovecot" if os.path.exists("/usr/sbin/dovecot") else None
        )
    if binary is None:
        _unavailable(
            "dovecot is not installed (apt-get install -y dovecot-imapd); "
            "IMAP tests need a real server"
        )
        raise AssertionError("unreachable")
    return binary


def _accounts() -> tuple[str, str, str, int, int]:
    """(internal user, login user, mail user name, mail uid, mail gid) for this process.

    As root, Dovecot drops privileges to the users its Debian package creates, and mail is
    stored as the system `mail` user (Dovecot refuses mail access as uid 0). Not as root,
    every process runs as the current user.
    """
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.geteuid())
        return me.pw_name, me.pw_name, me.pw_name, me.pw_uid, me.pw_gid
    for name in ("dovecot", "dovenull"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            _unavailable(f"system user {name!r} missing: reinstall dovecot-core")
    mail = pwd.getpwnam("mail")
    return "dovecot", "dovenull", mail.pw_name, mail.pw_uid, mail.pw_gid


def _oauth2_lines(root: Path, introspection_url: str | None) -> list[str]:
    """An `oauth2` passdb asking `introspection_url` (RFC 7662, POST) whether a token is
    active and whose it is; the passwd-file passdb before it still takes passwords."""
    if introspection_url is None:
        return []
    (root / "oauth2.conf.ext").write_text(
        f"introspection_mode = post\nintrospection_url = {introspection_url}\n"
        "force_introspection = yes\nusername_attribute = username\n"
        "active_attribute = active\nactive_value = true\n")
    # a refused token is what these tests try on purpose: no two-second penalty for it
    return ["auth_failure_delay = 0", "passdb {", "  driver = oauth2",
            "  mechanisms = xoauth2 oauthbearer", f"  args = {root}/oauth2.conf.ext", "}"]


def _config(root: Path, port: int, introspection_url: str | None = None) -> str:
    internal, login, mail_user, uid, gid = _accounts()
    unprivileged = os.geteuid() != 0
    lines = [
        f"base_dir = {root}/run",
        f"state_dir = {root}/state",
        "instance_name = ticketgw-test",
        f"log_path = {root}/dovecot.log",
        "protocols = imap",
        "listen = 127.0.0.1",
        "ssl = no",
        "disable_plaintext_auth = no",
        "auth_mechanisms = plain login"
        + (" xoauth2 oauthbearer" if introspection_url else ""),
        f"default_internal_user = {internal}",
        f"default_login_user = {login}",
        f"first_valid_uid = {uid}",
        f"last_valid_uid = {uid}",
        f"first_valid_gid = {gid}",
        f"last_valid_gid = {gid}",
        f"mail_location = maildir:{root}/mail/%n/Maildir",
        "passdb {",
        "  driver = passwd-file",
        f"  args = scheme=PLAIN username_format=%n {root}/passwd",
        "}",
        *_oauth2_lines(root, introspection_url),
        "userdb {",
        "  driver = static",
        f"  args = uid={uid} gid={gid} home={root}/mail/%n",
        "}",
        "service imap-login {",
        "  inet_listener imap {",
        "    address = 127.0.0.1",
        f"    port = {port}",
        "  }",
        "  inet_listener imaps {",
        "    port = 0",
        "  }",
    ]
    if unprivileged:
        # Without root nothing can chroot or change user.
        lines += ["  chroot =", "  user = " + login]
    lines += ["}", "service anvil {", "  chroot =", "}"]
    if unprivileged:
        lines += [f"default_internal_group = {grp.getgrgid(gid).gr_name}"]
        for service in ("auth", "auth-worker", "imap"):
            lines += [f"service {service} {{", f"  user = {mail_user}", "}"]
    return "\n".join(lines) + "\n"


def _greets(host: str, port: int) -> bool:
    """True once the IMAP greeting arrives (the port alone opens before auth is ready)."""
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            sock.settimeout(1)
            return sock.recv(64).startswith(b"* OK")
    except OSError:
        return False


def start_dovecot(timeout: float = 20.0, *, introspection_url: str | None = None,
                  users: tuple[str, ...] = (TEST_USER,),
                  ) -> tuple[DovecotServer, subprocess.Popen[bytes]]:
    """Dovecot with `users` (each with TEST_PASSWORD); with `introspection_url`, also XOAUTH2
    and OAUTHBEARER logins checked there."""
    binary = _dovecot_binary()
    root = Path(tempfile.mkdtemp(prefix="ticketgw-dovecot-"))  # short: socket paths
    _, _, _, uid, gid = _accounts()
    # The unprivileged Dovecot processes must reach the config, passwd file and Maildir.
    root.chmod(0o755)
    for sub in ("run", "state"):
        (root / sub).mkdir()
    (root / "mail").mkdir()
    os.chown(root / "mail", uid, gid)
    passwd = root / "passwd"
    passwd.write_text("".join(f"{user}:{{PLAIN}}{TEST_PASSWORD}::::::\n" for user in users))
    passwd.chmod(0o644)
    port = free_port()
    config = root / "dovecot.conf"
    config.write_text(_config(root, port, introspection_url))
    check = subprocess.run([binary, "-c", str(config), "-n"], capture_output=True, timeout=30)
    if check.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise AssertionError(f"dovecot rejects its test config: {check.stderr.decode()}")
    # A file, not a pipe: nobody reads a pipe while the tests run, and a full one blocks.
    with open(root / "stdout.log", "wb") as out:
        proc = subprocess.Popen(
            [binary, "-c", str(config), "-F"], stdout=out, stderr=subprocess.STDOUT
        )
    server = DovecotServer("127.0.0.1", port, TEST_USER, TEST_PASSWORD, root)
    deadline = time.monotonic() + timeout
    while not _greets(server.host, port):
        if proc.poll() is not None or time.monotonic() >= deadline:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
            output = (root / "stdout.log").read_bytes()
            log = server.log()
            shutil.rmtree(root, ignore_errors=True)
            raise AssertionError(
                f"dovecot did not answer on 127.0.0.1:{port} within {timeout} s "
                f"(exit {proc.returncode}):\n{output.decode(errors='replace')}\n{log}"
            )
        time.sleep(0.05)
    return server, proc


def stop_dovecot(server: DovecotServer, proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    """A running Dovecot with one user; shared by the session, so tests clear() their folder."""
    server, proc = start_dovecot()
    try:
        yield server
    finally:
        stop_dovecot(server, proc)
