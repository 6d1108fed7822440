"""Stopping cleanly: mail in flight is answered; `ticketgw smtp` with two processes on one port."""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from gateway.domain.facts import Role
from gateway.services.runtime import Runtime
from inbound import batching
from tests.inbound.conftest import CUSTOMER, DOMAIN, SmtpServer, World, make_mail, seed
from tests.support import free_port, wait_until
from tests.support.services import port_answers
from ticketgw.testing.runtime import make_runtime


@pytest.fixture
def world(runtime: Runtime) -> World:
    return seed(runtime)



def test_stop_answers_mail_in_flight(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    number = world.open()
    entered, release = threading.Event(), threading.Event()
    real = batching.receive_many

    def slow(*args: object, **kwargs: object) -> object:
        entered.set()
        release.wait(10)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(batching, "receive_many", slow)
    server = SmtpServer(world.runtime)
    answer: list[object] = []

    def client() -> None:
        with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as c:
            c.sendmail(CUSTOMER, [world.reply_address(number, Role.CUSTOMER)], make_mail())
            answer.append("250")  # sendmail raises on any other answer

    thread = threading.Thread(target=client)
    thread.start()
    assert entered.wait(10)
    stopping = threading.Thread(target=server.stop)
    stopping.start()
    wait_until(lambda: not port_answers("127.0.0.1", server.port, 0.2), 5,
               message="the listener stops accepting")
    release.set()
    thread.join(15)
    stopping.join(15)
    assert answer == ["250"]
    assert len(world.ticket(number)["messages"]) == 2  # type: ignore[arg-type]


def _two_listeners(tmp_path: Path) -> tuple[Runtime, World, int, int, subprocess.Popen[bytes]]:
    """`ticketgw smtp` with two processes on a free port, and a ticket to reply to."""
    url = f"sqlite:///{tmp_path / 'role.db'}"
    runtime = make_runtime(url, tmp_path)
    world = seed(runtime)
    number = world.open()
    port = free_port()
    env = {**os.environ, "TICKETGW_DATABASE_URL": url, "TICKETGW_SECRET_KEY": "test-secret",
           "TICKETGW_OUTBOX_MAILDIR": str(tmp_path / "outbox"),
           "TICKETGW_SMTP_LISTEN": f"127.0.0.1:{port}", "TICKETGW_SMTP_PROCESSES": "2"}
    with open(tmp_path / "smtp.log", "wb") as log:  # a pipe nobody reads would fill up
        proc = subprocess.Popen([sys.executable, "-m", "ticketgw.cli", "smtp"], env=env,
                                stdout=log, stderr=log, cwd=tmp_path,
                                start_new_session=True)
    return runtime, world, number, port, proc


def _kill_all(proc: subprocess.Popen[bytes]) -> None:
    """After a failure: the listener processes too, not only their parent (they would keep
    the port and outlive the test)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the group outlives its leader
    except ProcessLookupError:
        pass
    proc.wait()


@pytest.mark.skipif(not hasattr(signal, "SIGTERM"), reason="POSIX signals")
def test_smtp_role_two_processes_and_sigterm(tmp_path: Path) -> None:
    runtime, world, number, port, proc = _two_listeners(tmp_path)
    try:
        wait_until(lambda: port_answers("127.0.0.1", port), 20, message="smtp role listens")
        for i in range(4):
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
                client.sendmail(CUSTOMER, [world.reply_address(number, Role.CUSTOMER)],
                                make_mail(body=f"note {i}"))
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.ehlo()
            client.mail(CUSTOMER)
            code, _ = client.rcpt(f"nobody@{DOMAIN}")
            assert code == 550
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        _kill_all(proc)
    assert len(world.ticket(number)["messages"]) == 5  # type: ignore[arg-type]
    runtime.close()


def _sockets(pid: int) -> set[str]:
    """The inodes of the sockets a process holds."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    return inodes


def _connections_by_process(pids: list[int], port: int) -> dict[int, int]:
    """Established TCP connections on `port` that each process holds (from /proc)."""
    established = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "01":
            established.add(fields[9])
    return {pid: len(_sockets(pid) & established) for pid in pids}


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc")
def test_two_processes_share_eight_connections_evenly(tmp_path: Path) -> None:
    """SO_REUSEPORT alone gives one process 6 or more of 8 connections in a third of runs;
    a process with more open connections than its sibling hands a new one over."""
    runtime, world, number, port, proc = _two_listeners(tmp_path)
    clients: list[smtplib.SMTP] = []
    try:
        wait_until(lambda: port_answers("127.0.0.1", port), 20, message="smtp role listens")
        children = [int(c) for task in Path(f"/proc/{proc.pid}/task").iterdir()
                    for c in (task / "children").read_text().split()]
        assert len(children) == 2
        for _ in range(8):
            client = smtplib.SMTP("127.0.0.1", port, timeout=30)
            assert client.ehlo()[0] == 250  # greeted: the connection has its process
            clients.append(client)
        # a connection being handed over is held by both processes for a moment
        wait_until(lambda: sorted(_connections_by_process(children, port).values()) == [4, 4],
                   10, message="8 connections shared 4 and 4")
        for i, client in enumerate(clients):  # every session works, handed over or not
            client.sendmail(CUSTOMER, [world.reply_address(number, Role.CUSTOMER)],
                            make_mail(body=f"note {i}"))
            client.quit()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        _kill_all(proc)
    assert len(world.ticket(number)["messages"]) == 9  # type: ignore[arg-type]
    runtime.close()


def _exited(pid: int) -> bool:
    """The process is gone or a zombie (orphans are reaped by init)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def _released(inodes: set[str]) -> bool:
    """None of these sockets exists any more. The kernel releases a killed process's files
    after it has exited (even after it is reaped), and until then still queues connections
    on its listening socket."""
    live = set()
    for table, column in (("tcp", 9), ("tcp6", 9), ("unix", 6)):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if len(fields) > column:
                live.add(fields[column])
    return not inodes & live


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc")
def test_a_listener_that_died_is_handed_no_connections(tmp_path: Path) -> None:
    """After one of two listener processes is killed, every new connection is served by
    the other: none is handed to the dead one and left without a greeting."""
    runtime, world, number, port, proc = _two_listeners(tmp_path)
    try:
        wait_until(lambda: port_answers("127.0.0.1", port), 20, message="smtp role listens")
        children = [int(c) for task in Path(f"/proc/{proc.pid}/task").iterdir()
                    for c in (task / "children").read_text().split()]
        held = [smtplib.SMTP("127.0.0.1", port, timeout=10) for _ in range(3)]  # split 2/1
        assert all(client.ehlo()[0] == 250 for client in held)
        counts = _connections_by_process(children, port)
        # the one with fewer goes: the survivor has more open than the dead one's last count
        second, first = sorted(children, key=lambda pid: counts[pid])
        held_by_second = _sockets(second)
        os.kill(second, signal.SIGKILL)
        wait_until(lambda: _released(held_by_second), 10, message="the killed listener is gone")
        for i in range(6):
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                client.sendmail(CUSTOMER, [world.reply_address(number, Role.CUSTOMER)],
                                make_mail(body=f"after the loss {i}"))
        for client in held:
            client.close()
        os.kill(first, signal.SIGTERM)
        proc.wait(30)
    finally:
        _kill_all(proc)
    assert len(world.ticket(number)["messages"]) == 7  # type: ignore[arg-type]
    runtime.close()


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux's")
def test_listeners_stop_when_their_parent_is_killed(tmp_path: Path) -> None:
    """A SIGKILLed `ticketgw smtp` leaves no listener behind holding the port."""
    runtime, world, number, port, proc = _two_listeners(tmp_path)
    try:
        wait_until(lambda: port_answers("127.0.0.1", port), 20, message="smtp role listens")
        children = [int(c) for task in Path(f"/proc/{proc.pid}/task").iterdir()
                    for c in (task / "children").read_text().split()]
        assert len(children) == 2
        proc.kill()
        proc.wait()
        wait_until(lambda: all(_exited(pid) for pid in children), 20,
                   message="the listeners stop with their parent")
        wait_until(lambda: not port_answers("127.0.0.1", port, 0.2), 10,
                   message="nothing listens on the port")
    finally:
        _kill_all(proc)
    runtime.close()
