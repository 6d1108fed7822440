"""Servers a fault test may break: its own PostgreSQL cluster, its own redis-server, and the
`ticketgw` roles as real processes. The machine's shared services are never stopped."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.support.services import free_port, services_required, wait_until


def unavailable(message: str) -> None:
    """A tool the test needs is missing: skip, or fail when CI requires services."""
    if services_required():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if not found:
        unavailable(f"{name} not found under /usr/lib/postgresql/*/bin: a private "
                    "PostgreSQL cluster needs the server package")
    return found[-1]


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own, in a temporary folder on a free port, that the
    test may stop and start at will. initdb refuses to run as root: as root, every server
    command runs as the `postgres` user."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="ticketgw-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        self._user: str | None = None
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                unavailable("no `postgres` user to run a private cluster as (initdb refuses root)")
            self._user = "postgres"
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        self._run(_pg_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "--no-sync", "-E", "UTF8", "--locale", "C")

    def _run(self, *command: str, timeout: float = 60) -> None:
        prefix = ["runuser", "-u", self._user, "--"] if self._user else []
        done = subprocess.run([*prefix, *command], capture_output=True, timeout=timeout)
        if done.returncode != 0:
            raise AssertionError(f"{' '.join(command)} failed: {done.stderr.decode()}"
                                 f"{self.log.read_text() if self.log.exists() else ''}")

    def start(self) -> None:
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 "
                   f"-c unix_socket_directories={self.root} -c max_connections=200")
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options,
                  "-w", "-t", "60", "start", timeout=90)

    def stop(self, mode: str = "immediate") -> None:
        """`immediate` is a crash: every server process goes at once, no checkpoint."""
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def _conninfo(self, dbname: str = "postgres") -> str:
        return (f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname} "
                "connect_timeout=3")

    def create_database(self, name: str) -> str:
        """A new database; its SQLAlchemy URL."""
        with psycopg.connect(self._conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def answers(self) -> bool:
        try:
            with psycopg.connect(self._conninfo(), autocommit=True) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.OperationalError:
            return False

    def destroy(self) -> None:
        if self.answers():
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class PrivateRedis:
    """redis-server of the test's own on a free port; every write is on disk before it is
    answered (appendfsync always), so a killed server comes back with what it acknowledged."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            unavailable("redis-server is not installed: the broker fault tests start their own")
        self.binary = binary or ""
        self.root = Path(tempfile.mkdtemp(prefix="ticketgw-redis-"))
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        with (self.root / "server.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir",
                 str(self.root), "--save", "", "--appendonly", "yes", "--appendfsync", "always",
                 "--protected-mode", "no"], stdout=log, stderr=subprocess.STDOUT)
        wait_until(self.answers, 20, message=f"redis-server on port {self.port}")

    def kill(self) -> None:
        """A crash: SIGKILL, nothing flushed beyond what was already acknowledged."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def destroy(self) -> None:
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)


def ticketgw_command(*args: str) -> list[str]:
    """The installed `ticketgw` console script beside this Python (the venv's)."""
    script = Path(sys.executable).parent / "ticketgw"
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-m", "ticketgw.cli", *args]


def run_ticketgw(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """One `ticketgw` command to its end (`--json` output is the caller's to read)."""
    return subprocess.run(ticketgw_command(*args), env={**os.environ, **env}, cwd=cwd,
                          capture_output=True, text=True, timeout=120)


class RoleProcess:
    """One `ticketgw ROLE` process in a session of its own, its log in a file (a pipe nobody
    reads would fill up and block it)."""

    def __init__(self, role: str, env: dict[str, str], log: Path, cwd: Path) -> None:
        self.role, self.env, self.log, self.cwd = role, env, log, cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._logged_before = 0  # bytes of the log written before the current start

    def start(self) -> RoleProcess:
        self._logged_before = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(ticketgw_command(self.role),
                                         env={**os.environ, **self.env}, stdout=out,
                                         stderr=out, cwd=self.cwd, start_new_session=True)
        self.starts += 1
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL to the whole process group: no handler runs, nothing is finished."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(30)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then wait: the role finishes what is in flight."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.role} did not stop within {timeout} s: "
                                 f"{self.log_text()[-3000:]}") from None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_logged(self, marker: str, timeout: float = 60) -> None:
        """Until the current start has logged `marker` (the log keeps every start's lines):
        e.g. its signal handlers are in place once it says it is running."""

        def logged() -> bool:
            with self.log.open("rb") as log:
                log.seek(self._logged_before)
                return marker.encode() in log.read()

        wait_until(logged, timeout, 0.05, f"{self.role} ({self.log.name}) logs {marker!r}")


def smtp_greets(port: int, timeout: float = 0.5) -> bool:
    """The listener answers with its 220 greeting (a bound port alone may still be a dying
    process's)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.settimeout(timeout * 4)
            return sock.recv(4).startswith(b"220")
    except OSError:
        return False


def elapsed(since: float) -> float:
    return round(time.monotonic() - since, 1)
