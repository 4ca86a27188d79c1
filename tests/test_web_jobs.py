"""Jobs: queued → running → finished/failed/interrupted, kept in the garden; a job left running
by a killed server is marked interrupted, never left running."""

from __future__ import annotations

import os
import signal
import threading

import pytest
from grow_support import add_dataset

from bonsai.store import RecordStore
from bonsai.web import jobs
from bonsai.web.worker import run_job


def test_a_teach_job_runs_through_the_same_code_as_the_cli(garden):
    add_dataset(garden)
    job = jobs.enqueue(garden.db, "teach", {"dataset": "cats", "backend": "template"}, "teach")
    assert job.state == "queued"
    claimed = jobs.claim_next(garden.db, os.getpid())
    assert claimed.id == job.id and claimed.state == "running"
    assert jobs.claim_next(garden.db, os.getpid()) is None  # one at a time
    assert run_job(garden, claimed) == "finished"
    done = jobs.get(garden.db, job.id)
    assert done.state == "finished" and done.progress["done"] == done.progress["total"] == 16
    assert done.result["written"] == 16 and done.result["failed"] == []
    log = jobs.log_path(garden.root, job.id).read_text(encoding="utf-8")
    assert "Taught 16" in log and "Job 1 finished." in log
    history = [c.kind for c in RecordStore(garden.db).history("cats")]
    assert history[-1] == "teach"


def test_a_bad_setting_fails_the_job_with_the_clis_message(garden):
    add_dataset(garden)
    jobs.enqueue(garden.db, "teach", {"dataset": "cats", "backend": "openai"}, "teach")
    job = jobs.claim_next(garden.db, os.getpid())
    assert run_job(garden, job) == "failed"
    assert "needs a model name" in jobs.get(garden.db, job.id).error


def test_a_stop_request_interrupts_the_running_job(garden, monkeypatch: pytest.MonkeyPatch):
    import bonsai.web.tasks as tasks

    started = threading.Event()

    def slow(garden_, params, reporter):
        started.set()
        threading.Timer(0.1, lambda: jobs.request_stop(garden.db, job.id)).start()
        threading.Event().wait(10)  # interrupted by the SIGINT the watcher sends
        return {}

    monkeypatch.setitem(tasks.TASKS, "teach", slow)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        jobs.enqueue(garden.db, "teach", {"dataset": "cats"}, "teach")
        job = jobs.claim_next(garden.db, os.getpid())
        assert run_job(garden, job) == "interrupted"
    finally:
        signal.signal(signal.SIGINT, previous)
    assert started.is_set()
    assert jobs.get(garden.db, job.id).error == "stopped on request"


def test_queued_jobs_are_cancelled_and_orphans_marked_interrupted(garden):
    queued = jobs.enqueue(garden.db, "train", {"dataset": "cats"})
    assert jobs.request_stop(garden.db, queued.id).state == "interrupted"
    orphan = jobs.enqueue(garden.db, "train", {"dataset": "cats"})
    jobs.claim_next(garden.db, 999_999)
    assert jobs.mark_orphans(garden.db, alive=lambda pid: False) == [orphan.id]
    found = jobs.get(garden.db, orphan.id)
    assert found.state == "interrupted" and "server restart" in found.error
    assert jobs.active(garden.db) == []
