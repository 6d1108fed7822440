"""`ticketgw demo`, then the steps it prints, as a newcomer would run them."""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.ticketgw.test_serve import Served


def step(steps: list[str], number: int) -> str:
    [found] = [s for s in steps if s.startswith(f"{number}. ")]
    return found


def command_of(text: str) -> str:
    """The shell command of a printed step: everything after its first line."""
    return text.split("\n", 1)[1].strip()


def test_demo_then_its_printed_steps(tmp_path: Path) -> None:
    served = Served(tmp_path)
    first = served.cli("demo")
    assert first["created"] is True and sorted(first["tickets"]) == [
        "DEMO0001", "DEMO0003", "DEMO0004"]
    again = served.cli("demo")
    assert again["created"] is False and again["tickets"] == first["tickets"]
    types = {t["type"] for t in served.cli("ticket", "list")}
    assert types == {"refund", "cancellation", "tech_support"}
    vendors = {v["nickname"]: v["locale"] for v in served.cli("vendor", "list")}
    assert vendors == {"acme": "en", "atelier": "fr"}

    served.start()
    try:
        follow_the_steps(served, first["tickets"], again["steps"])
    finally:
        if served.process is not None and served.process.poll() is None:
            served.process.kill()


def test_demo_leaves_a_database_with_other_vendors_alone(tmp_path: Path) -> None:
    served = Served(tmp_path)
    served.cli("vendor", "add", "acme", "--email", "sales@acme.example")
    done = subprocess.run([sys.executable, "-m", "ticketgw.cli", "demo"], cwd=tmp_path,
                          env=served.env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "empty database" in done.stderr
    assert served.cli("ticket", "list") == []
    assert [v["nickname"] for v in served.cli("vendor", "list")] == ["acme"]


def follow_the_steps(served: Served, seeded: dict[str, int], steps: list[str]) -> None:
    for number in (2, 3):  # mail a question as a customer; answer a ticket as the vendor
        done = subprocess.run(["bash", "-c", command_of(step(steps, number))],
                              cwd=served.workdir, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    asked = [t for t in served.cli("ticket", "list", "--receipt", "DEMO0002")]
    assert [t["type"] for t in asked] == ["tech_support"]
    support = seeded["DEMO0001"]
    answered = served.cli("ticket", "show", str(support))
    assert answered["messages"][-1]["author_role"] == "vendor"
    assert "new link" in answered["messages"][-1]["text"]
    joao = served.cli("ticket", "show", str(asked[0]["number"]))
    assert "sem o manual" in joao["messages"][0]["text"]

    for url in re.findall(r"http://\S+/t/\S+", step(steps, 4)):
        with urllib.request.urlopen(url, timeout=10) as page:
            assert page.status == 200 and "#" in page.read().decode()
    workplace = step(steps, 5)  # the sign-in page it names, and the command it prints
    [signin] = re.findall(r"http://\S+/signin", workplace)
    with urllib.request.urlopen(signin, timeout=10) as page:
        assert page.status == 200 and "<form" in page.read().decode()
    assert "ticketgw vendor link acme" in workplace
    link = served.cli("vendor", "link", "acme")
    assert link["mailed_to"] and link["link"].startswith(signin)
    with urllib.request.urlopen(link["link"], timeout=10) as page:
        assert page.status == 200
    assert served.stop() == 0
