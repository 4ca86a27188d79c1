"""Training threads: the cores, less those that other processes keep busy right now."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from bonsai.train import args as train_args
from bonsai.train.args import available_threads, busy_cores

SPIN = "import time\nend = time.time() + 5\nwhile time.time() < end: pass"


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="needs /proc/stat")
def test_a_busy_core_is_seen_and_left_alone() -> None:
    quiet = busy_cores()
    assert quiet is not None
    spinner = subprocess.Popen([sys.executable, "-c", SPIN])
    try:
        time.sleep(0.5)
        busy = busy_cores(0.5)
    finally:
        spinner.kill()
        spinner.wait()
    assert busy is not None and busy >= quiet + 0.6, (quiet, busy)


def test_threads_leave_the_busy_cores_and_say_why(monkeypatch) -> None:
    monkeypatch.setattr(train_args, "available_cores", lambda: 4)
    monkeypatch.setattr(train_args, "busy_cores", lambda: 0.2)
    assert available_threads() == (4, "4 CPU cores")
    monkeypatch.setattr(train_args, "busy_cores", lambda: 1.8)
    assert available_threads() == (2, "4 CPU cores, 1.8 of them busy with other work")
    monkeypatch.setattr(train_args, "busy_cores", lambda: 9.0)
    assert available_threads()[0] == 1  # never fewer than one
