"""Writers of one SQLite file take turns on a lock file: across processes and threads, never
two at once, and a forked child never shares its parent's turn."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path

from sqlalchemy import text

from store.db import make_engine, writer_turn


def _write(url: str, log: str, who: str, rounds: int) -> None:
    engine = make_engine(url)
    for _ in range(rounds):
        with writer_turn(engine), engine.begin() as conn:
            with open(log, "a") as out:
                out.write(f"in {who}\n")
            conn.execute(text("INSERT INTO turns (who) VALUES (:who)"), {"who": who})
            time.sleep(0.002)  # hold the turn a while: an overlap would show in the log
            with open(log, "a") as out:
                out.write(f"out {who}\n")
    engine.dispose()


def test_processes_and_threads_take_turns(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'turns.db'}"
    log = str(tmp_path / "turns.log")
    engine = make_engine(url)
    with writer_turn(engine), engine.begin() as conn:  # held by the parent before the fork
        conn.execute(text("CREATE TABLE turns (id INTEGER PRIMARY KEY, who TEXT)"))
    context = multiprocessing.get_context("fork")
    children = [context.Process(target=_write, args=(url, log, f"p{i}", 20)) for i in range(2)]
    for child in children:
        child.start()
    threads = [threading.Thread(target=_write, args=(url, log, f"t{i}", 20)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for child in children:
        child.join(60)
        assert child.exitcode == 0
    lines = Path(log).read_text().splitlines()
    assert len(lines) == 4 * 20 * 2
    for enter, leave in zip(lines[::2], lines[1::2], strict=True):  # strictly alternating
        assert enter.startswith("in ") and leave == "out " + enter[3:]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM turns")).scalar_one() == 80
    engine.dispose()

