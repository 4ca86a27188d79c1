"""Running the teacher over a dataset: concurrent, rate-limited, retried, validated, resumable.

The shape of a run:

1. **plan** — load the records, render every prompt (a broken template stops the run before any
   request), compute cache keys, look them up. Nothing is written.
2. **teach** — ``concurrency`` workers take the records the cache lacks. Each request is retried
   with exponential backoff and jitter on 429, 5xx, timeouts and malformed replies; an answer that
   fails validation is asked again with the reason added. Each record's outcome (its answer in the
   cache plus the log of its calls) is committed the moment it is known, so a run killed at any
   moment loses nothing it had finished.
3. **write** — the new reasoning goes into the records as one changeset (kind ``teach``), so the
   run shows in ``bonsai data history`` and one undo reverts it. This also happens when the run is
   interrupted or stopped by a fatal error; a run killed outright gets its answers from the cache
   on the next run, without a request.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from bonsai import __version__
from bonsai.errors import BonsaiError
from bonsai.garden import Garden
from bonsai.records import Record
from bonsai.store import Change, RecordStore
from bonsai.teach.args import TeachArgs
from bonsai.teach.backends import Answer, Teacher, TeacherError, TeachRequest
from bonsai.teach.cache import CacheEntry, CallLog, TeachCache, cache_key
from bonsai.teach.templates import Template, TemplateSet, reasoning_language
from bonsai.teach.validate import validate
from bonsai.util.atomic import atomic_write_json
from bonsai.util.text import redact_url

CONTENT_FIELDS = ("instruction", "input", "output", "category", "language")
"""What a reasoning depends on: a record whose content changed mid-run is not overwritten."""

FEEDBACK = (
    "\n\n## Your previous reply could not be used\n"
    "Reason: {reason}.\n"
    "Previous reply:\n{previous}\n\n"
    "Write the reasoning again, following every rule above."
)


@dataclass
class Job:
    """One record to teach, with its prompt and cache key."""

    record: Record
    template: Template
    prompt: str
    key: str
    language: str | None


@dataclass
class Plan:
    """What a run will do, computed without writing anything."""

    dataset: str
    total_records: int
    skipped: int
    """Records left out because they already have a reasoning (``only_missing``)."""
    jobs: list[Job]
    hits: dict[str, CacheEntry]
    templates: dict[str, Template]

    @property
    def misses(self) -> list[Job]:
        return [job for job in self.jobs if job.key not in self.hits]


@dataclass
class Failure:
    record_id: str
    reason: str
    attempts: int


@dataclass
class TeachSummary:
    """What a run did."""

    run_id: str
    dataset: str
    backend: str
    model: str
    written_by: str
    selected: int = 0
    skipped: int = 0
    done: int = 0
    """Records the teacher answered in this run."""
    cached: int = 0
    """Records answered from the cache, without a request."""
    failed: list[Failure] = field(default_factory=list)
    not_reached: int = 0
    """Records left untouched because the run stopped early."""
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    elapsed_s: float = 0.0
    written: int = 0
    """Records whose reasoning changed in the garden."""
    changed_meanwhile: int = 0
    """Records edited by someone else during the run: left as they are."""
    changeset: int | None = None
    aborted: str | None = None
    """Why the run stopped early (a fatal error), or None."""
    abort_hint: str | None = None
    manifest: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["manifest"] = str(self.manifest) if self.manifest else None
        return data


class Progress(Protocol):
    """Where a run reports its progress (the CLI shows a bar)."""

    def start(self, total: int, *, completed: int) -> None: ...

    def advance(self, *, failed: bool) -> None: ...

    def stop(self) -> None: ...


class NoProgress:
    def start(self, total: int, *, completed: int) -> None:
        return None

    def advance(self, *, failed: bool) -> None:
        return None

    def stop(self) -> None:
        return None


class RateLimiter:
    """Spaces request starts evenly so that at most ``per_minute`` begin in any minute."""

    def __init__(self, per_minute: float | None) -> None:
        self.interval = 60.0 / per_minute if per_minute else 0.0
        self._next = 0.0

    async def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        slot = max(now, self._next)
        self._next = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


def backoff_delay(
    retry: int, *, base: float, cap: float, retry_after: float | None, rng: random.Random
) -> float:
    """Seconds to wait before retry number ``retry`` (0-based).

    Exponential (base · 2^retry, capped) with "equal jitter": at least half the step, so a
    crowd of workers that failed together does not come back together. A server's Retry-After
    is honoured (capped) and jittered the same way.
    """
    if retry_after is not None:
        return min(cap, retry_after) + rng.uniform(0, min(base, cap) / 2)
    step = min(cap, base * 2**retry)
    return step / 2 + rng.uniform(0, step / 2)


class _Fatal(Exception):
    """An error no record would escape (wrong key, unknown model, endpoint unreachable)."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class _RecordFailed(Exception):
    def __init__(self, reason: str, attempts: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts


def new_run_id() -> str:
    return f"teach-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def plan_run(garden: Garden, args: TeachArgs, teacher: Teacher) -> Plan:
    """Select the records, render their prompts and look them up in the cache. Writes nothing."""
    store = RecordStore(garden.db)
    records = store.records(args.dataset)
    if not records:
        raise BonsaiError(
            f"dataset '{args.dataset}' has no records",
            field="dataset",
            hint="`bonsai data import FILE --dataset NAME` adds some",
        )
    selected = [r for r in records if not (args.only_missing and (r.reasoning or "").strip())]
    skipped = len(records) - len(selected)
    if args.limit is not None:
        selected = selected[: args.limit]
    templates = TemplateSet(garden.templates_dir)
    jobs = []
    for record in selected:
        template, prompt = templates.render(record, args.language_policy)
        key = cache_key(
            template_hash=template.hash,
            backend=teacher.backend,
            model=teacher.model,
            language_policy=args.language_policy,
            record=record,
        )
        language = reasoning_language(record, args.language_policy)
        jobs.append(Job(record, template, prompt, key, language))
    cache = TeachCache(garden.db, dataset=args.dataset, run_id="")
    hits = cache.lookup([job.key for job in jobs])
    used = {job.template.name: job.template for job in jobs}
    return Plan(args.dataset, len(records), skipped, jobs, hits, used)


class TeachRun:
    """One run of the teacher over a planned set of records."""

    def __init__(
        self,
        garden: Garden,
        args: TeachArgs,
        teacher: Teacher,
        *,
        progress: Progress | None = None,
        run_id: str | None = None,
        seed: int | None = None,
    ) -> None:
        self.garden = garden
        self.args = args
        self.teacher = teacher
        self.progress = progress or NoProgress()
        self.run_id = run_id or new_run_id()
        self.cache = TeachCache(garden.db, dataset=args.dataset, run_id=self.run_id)
        self.limiter = RateLimiter(args.requests_per_minute)
        self.rng = random.Random(seed)
        self.summary = TeachSummary(
            run_id=self.run_id,
            dataset=args.dataset,
            backend=teacher.backend,
            model=teacher.model,
            written_by=teacher.written_by,
        )
        self._results: dict[str, tuple[Record, str, dict[str, Any]]] = {}
        self._any_success = False
        self._started = 0.0

    # -- the run --------------------------------------------------------------------------------

    async def run(self, plan: Plan) -> TeachSummary:
        """Teach every job of ``plan``; returns the summary (``aborted`` says if it stopped)."""
        summary = self.summary
        summary.selected, summary.skipped = len(plan.jobs), plan.skipped
        self._started = time.perf_counter()
        self.cache.start_run(
            backend=self.teacher.backend, model=self.teacher.model, settings=self.args.settings()
        )
        for job in plan.jobs:
            entry = plan.hits.get(job.key)
            if entry is not None:
                self._results[job.record.id] = (job.record, entry.reasoning, entry.meta)
                summary.cached += 1
        misses = plan.misses
        self.progress.start(len(plan.jobs), completed=summary.cached)
        status = "interrupted"
        try:
            await self._teach_all(misses)
            status = "aborted" if summary.aborted else "done"
        finally:
            self.progress.stop()
            summary.not_reached = (
                len(plan.jobs) - summary.cached - summary.done - len(summary.failed)
            )
            self._write(plan)
            summary.elapsed_s = time.perf_counter() - self._started
            self._finish(plan, status)
        return summary

    async def _teach_all(self, jobs: list[Job]) -> None:
        if not jobs:
            return
        limit = self.teacher.max_concurrency or self.args.concurrency
        workers = max(1, min(self.args.concurrency, limit, len(jobs)))
        queue: Iterator[Job] = iter(jobs)  # one event loop: workers share it without a lock
        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(workers):
                    group.create_task(self._worker(queue))
        except* _Fatal as errors:
            fatal = errors.exceptions[0]
            assert isinstance(fatal, _Fatal)
            self.summary.aborted, self.summary.abort_hint = fatal.message, fatal.hint

    async def _worker(self, queue: Iterator[Job]) -> None:
        for job in queue:
            await self._teach_one(job)

    async def _teach_one(self, job: Job) -> None:
        calls: list[CallLog] = []
        try:
            text, attempts = await self._answer_valid(job, calls)
        except _RecordFailed as failed:
            self.cache.commit(calls, backend=self.teacher.backend, model=self.teacher.model)
            self.summary.failed.append(Failure(job.record.id, failed.reason, failed.attempts))
            self.progress.advance(failed=True)
            return
        except _Fatal:
            self.cache.commit(calls, backend=self.teacher.backend, model=self.teacher.model)
            raise
        meta = self._meta(job, attempts)
        entry = CacheEntry(job.key, text, meta)
        self.cache.commit(
            calls,
            backend=self.teacher.backend,
            model=self.teacher.model,
            entry=entry,
            record_id=job.record.id,
        )
        self._results[job.record.id] = (job.record, text, meta)
        self.summary.done += 1
        self.progress.advance(failed=False)

    async def _answer_valid(self, job: Job, calls: list[CallLog]) -> tuple[str, int]:
        """A valid reasoning for ``job`` and the number of answers it took."""
        attempts = 1 if self.teacher.deterministic else self.args.max_attempts
        prompt, reason = job.prompt, "no answer"
        for attempt in range(1, attempts + 1):
            answer, call = await self._request(job, prompt, attempt, calls)
            verdict = validate(answer.text, job.record, self.args.language_policy)
            if verdict.ok:
                call.status = "ok"
                return verdict.text, attempt
            reason = verdict.reason or "invalid"
            call.status, call.error = "invalid", reason
            previous = verdict.text or "(empty)"
            prompt = job.prompt + FEEDBACK.format(reason=reason, previous=previous)
        raise _RecordFailed(f"invalid answer: {reason}", attempts)

    async def _request(
        self, job: Job, prompt: str, attempt: int, calls: list[CallLog]
    ) -> tuple[Answer, CallLog]:
        """One answer from the teacher, retrying transient errors with backoff."""
        request = TeachRequest(job.record, prompt, job.language)
        args = self.args
        for retry in range(args.max_retries + 1):
            await self.limiter.wait()
            started = time.perf_counter()
            call = CallLog(job.record.id, job.key, attempt, prompt, None, "error", None, 0.0)
            call.created_at = time.time()
            calls.append(call)
            self.summary.requests += 1
            try:
                answer = await self.teacher.answer(request)
            except TeacherError as error:
                call.latency_s = time.perf_counter() - started
                call.error = f"{error.kind}: {error}"
                if error.fatal or (error.kind == "connection" and not self._any_success):
                    raise self._fatal(error) from None
                if not error.retryable or retry == args.max_retries:
                    tries = "" if not error.retryable else f" after {retry + 1} tries"
                    raise _RecordFailed(f"{error.kind}: {error}{tries}", attempt) from None
                await asyncio.sleep(
                    backoff_delay(
                        retry,
                        base=args.backoff,
                        cap=args.backoff_max,
                        retry_after=error.retry_after,
                        rng=self.rng,
                    )
                )
                continue
            except BonsaiError as error:  # the backend could not start (a local model missing)
                call.error = str(error)
                raise _Fatal(str(error)) from None
            self._any_success = True
            call.latency_s = time.perf_counter() - started
            call.answer = answer.text
            call.prompt_tokens, call.completion_tokens = (
                answer.prompt_tokens,
                answer.completion_tokens,
            )
            self.summary.prompt_tokens += answer.prompt_tokens or 0
            self.summary.completion_tokens += answer.completion_tokens or 0
            return answer, call
        raise AssertionError("unreachable: the last retry raises")

    def _fatal(self, error: TeacherError) -> _Fatal:
        where = redact_url(getattr(self.teacher, "base_url", None)) or "the default OpenAI endpoint"
        model = self.teacher.model
        if error.kind == "auth":
            env = self.args.api_key_env
            hint = (
                f"check the key in ${env}"
                if env
                else "pass --api-key-env VAR naming the variable that holds the key"
            )
            return _Fatal(f"the teacher at {where} refused the API key: {error}", hint)
        if error.kind == "not_found":
            return _Fatal(
                f"the teacher at {where} has no model '{model}': {error}",
                "check --model; a --base-url without its /v1 gives the same error",
            )
        return _Fatal(
            f"cannot reach the teacher at {where}: {error.message}",
            "is the server running? check --base-url",
        )

    def _meta(self, job: Job, attempts: int) -> dict[str, Any]:
        """Provenance of one reasoning, kept in the record's ``reasoning_meta``."""
        return {
            "written_by": self.teacher.written_by,
            "backend": self.teacher.backend,
            "model": self.teacher.model,
            "template": job.template.name,
            "template_origin": job.template.origin,
            "template_hash": job.template.hash,
            "language_policy": self.args.language_policy,
            "attempts": attempts,
            "taught_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "run_id": self.run_id,
            "cache_key": job.key,
        }

    # -- writing --------------------------------------------------------------------------------

    def _write(self, plan: Plan) -> None:
        """Put the new reasoning into the records: one changeset for the whole run."""
        if not self._results:
            return
        store = RecordStore(self.garden.db)
        current = {r.id: r for r in store.records(self.args.dataset)}
        changes = []
        for record_id, (original, text, meta) in self._results.items():
            now = current.get(record_id)
            if now is None:
                continue
            if any(getattr(now, f) != getattr(original, f) for f in CONTENT_FIELDS):
                self.summary.changed_meanwhile += 1
                continue
            after = dataclasses.replace(now, reasoning=text, reasoning_meta=meta)
            changes.append(Change(now, after))
        teacher = f"{self.teacher.backend} ({self.teacher.model})"
        self.summary.written = sum(1 for c in changes if c.before != c.after)
        self.summary.changeset = store.apply(
            self.args.dataset,
            changes,
            kind="teach",
            description=f"teach: reasoning for {self.summary.written} records by {teacher}",
            summary={
                "run_id": self.run_id,
                "backend": self.teacher.backend,
                "model": self.teacher.model,
                "written_by": self.teacher.written_by,
                "done": self.summary.done,
                "cached": self.summary.cached,
                "failed": len(self.summary.failed),
            },
        )

    def _finish(self, plan: Plan, status: str) -> None:
        summary = self.summary
        run_dir = self.garden.runs_dir / self.run_id
        summary.manifest = run_dir / "manifest.json"
        base_url = redact_url(getattr(self.teacher, "base_url", None))
        manifest = {
            "kind": "teach",
            "run_id": self.run_id,
            "status": status,
            "code_version": __version__,
            "dataset": self.args.dataset,
            "teacher": {
                "backend": self.teacher.backend,
                "model": self.teacher.model,
                "written_by": self.teacher.written_by,
                "base_url": base_url,
            },
            "settings": self.args.settings(),
            "templates": {
                name: {
                    "origin": t.origin,
                    "path": str(t.path),
                    "hash": t.hash,
                    "sources": t.sources,
                }
                for name, t in sorted(plan.templates.items())
            },
            "summary": summary.to_dict(),
        }
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(summary.manifest, manifest)
        self.cache.finish_run(status, summary.to_dict())


def teach(
    garden: Garden,
    args: TeachArgs,
    teacher: Teacher,
    *,
    progress: Progress | None = None,
    plan: Plan | None = None,
) -> TeachSummary:
    """Plan and run the teacher over ``args.dataset``; closes the teacher afterwards."""
    plan = plan or plan_run(garden, args, teacher)

    async def main() -> TeachSummary:
        try:
            return await TeachRun(garden, args, teacher, progress=progress).run(plan)
        finally:
            await teacher.aclose()

    return asyncio.run(main())
