"""Training threads: the cores, less those that other processes keep busy right now.

The arithmetic is tested on fixed /proc/stat readings (deterministic, default tier); the check
against a real spinning process is in the slow tier, since another job on the machine moves it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from bonsai.train import args as train_args
from bonsai.train.args import (
    CpuSample,
    available_threads,
    busy_between,
    busy_cores,
    read_cpu_sample,
)

SPIN = "import time\nend = time.time() + 5\nwhile time.time() < end: pass"


def test_a_stat_line_is_read_as_total_idle_and_own_time() -> None:
    sample = read_cpu_sample("cpu  100 0 50 800 50 0 0 0 0 0\n")
    assert sample is not None
    assert (sample.total, sample.idle) == (1000.0, 850.0)
    assert read_cpu_sample("cpu garbage") is None
    assert read_cpu_sample("cpu 1 2") is None


def test_busy_cores_come_from_the_difference_less_this_process() -> None:
    first = CpuSample(total=1000.0, idle=800.0, own=1.0)
    # 400 ticks passed on 4 cores, 200 of them busy: 2 cores busy, none of it this process.
    assert busy_between(first, CpuSample(1400.0, 1000.0, 1.0), cpus=4, ticks=100) == 2.0
    # This process used 1 s = 100 ticks of those 200: one core is busy with other work.
    assert busy_between(first, CpuSample(1400.0, 1000.0, 2.0), cpus=4, ticks=100) == 1.0
    # Never below zero; None when no time passed.
    assert busy_between(first, CpuSample(1400.0, 1000.0, 9.0), cpus=4, ticks=100) == 0.0
    assert busy_between(first, first, cpus=4, ticks=100) is None


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="needs /proc/stat")
def test_a_busy_core_is_seen_and_left_alone() -> None:
    quiet = busy_cores()
    assert quiet is not None
    if quiet > (os.cpu_count() or 1) - 1:
        pytest.skip(f"no idle core to spin on ({quiet:.1f} busy)")
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
