"""What the pages show, read straight from the garden: counts, a page of records, the next step.

Reading only; every write goes through the stage's own functions.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from bonsai.garden import Garden
from bonsai.records import CATEGORIES, Record
from bonsai.store import _COLUMNS, _row_to_record

PAGE_SIZE = 50


@dataclass
class DatasetSummary:
    name: str
    records: int
    with_reasoning: int
    train: int
    val: int
    languages: list[str]
    counts: dict[tuple[str, str], int]
    """(category or '', language or '') → records."""
    changes: int

    def count(self, category: str, language: str) -> int:
        return self.counts.get((category, language), 0)

    def category_total(self, category: str) -> int:
        return sum(n for (c, _), n in self.counts.items() if c == category)

    def categories(self) -> list[str]:
        present = {c for c, _ in self.counts}
        ordered = [c for c in CATEGORIES if c in present]
        return ordered + sorted(c for c in present if c not in CATEGORIES)


def dataset_summaries(conn: sqlite3.Connection) -> list[DatasetSummary]:
    out = []
    for ds_id, name in conn.execute("SELECT id, name FROM datasets ORDER BY name").fetchall():
        counts: dict[tuple[str, str], int] = {}
        for category, language, n in conn.execute(
            "SELECT COALESCE(category, ''), COALESCE(language, ''), COUNT(*) FROM records"
            " WHERE dataset_id = ? GROUP BY 1, 2",
            (ds_id,),
        ):
            counts[(category, language)] = n
        total, reasoned, train, val = conn.execute(
            "SELECT COUNT(*), SUM(reasoning IS NOT NULL AND TRIM(reasoning) != ''),"
            " SUM(split = 'train'), SUM(split = 'val') FROM records WHERE dataset_id = ?",
            (ds_id,),
        ).fetchone()
        changes = conn.execute(
            "SELECT COUNT(*) FROM changesets WHERE dataset_id = ?", (ds_id,)
        ).fetchone()[0]
        languages = sorted({lang for _, lang in counts}, key=lambda x: (x == "", x))
        out.append(
            DatasetSummary(
                name, total or 0, reasoned or 0, train or 0, val or 0, languages, counts, changes
            )
        )
    return out


@dataclass
class RecordQuery:
    dataset: str
    q: str = ""
    category: str = ""
    language: str = ""
    split: str = ""
    shard: str = ""
    finding: str = ""
    """'' (all), 'any' (records with a finding) or a finding code."""
    page: int = 1

    def params(self, **override: Any) -> str:
        from urllib.parse import urlencode

        values = {
            "dataset": self.dataset,
            "q": self.q,
            "category": self.category,
            "language": self.language,
            "split": self.split,
            "shard": self.shard,
            "finding": self.finding,
            "page": self.page,
        }
        values.update(override)
        return urlencode({k: v for k, v in values.items() if v not in ("", None)})


@dataclass
class RecordPage:
    query: RecordQuery
    records: list[Record]
    total: int
    pages: int
    findings: dict[str, list[Any]] = field(default_factory=dict)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def query_records(
    conn: sqlite3.Connection,
    query: RecordQuery,
    *,
    only_ids: set[str] | None = None,
    page_size: int = PAGE_SIZE,
) -> RecordPage:
    """One page of a dataset's records, filtered and searched in SQL (16k records: a few ms)."""
    row = conn.execute("SELECT id FROM datasets WHERE name = ?", (query.dataset,)).fetchone()
    if row is None:
        return RecordPage(query, [], 0, 1)
    where = ["dataset_id = ?"]
    params: list[Any] = [row[0]]
    for name in ("category", "language", "split"):
        value = getattr(query, name)
        if value == "-":
            where.append(f"{name} IS NULL")
        elif value:
            where.append(f"{name} = ?")
            params.append(value)
    if query.shard == "-":
        where.append("shard IS NULL")
    elif query.shard.strip().lstrip("-").isdigit():
        where.append("shard = ?")
        params.append(int(query.shard))
    if query.q.strip():
        for word in query.q.split():
            pattern = f"%{_escape_like(word)}%"
            where.append(
                "(instruction LIKE ? ESCAPE '\\' OR input LIKE ? ESCAPE '\\'"
                " OR output LIKE ? ESCAPE '\\' OR id LIKE ? ESCAPE '\\'"
                " OR reasoning LIKE ? ESCAPE '\\')"
            )
            params += [pattern] * 5
    if only_ids is not None:
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS web_ids (id TEXT PRIMARY KEY)")
        conn.execute("DELETE FROM web_ids")
        conn.executemany("INSERT OR IGNORE INTO web_ids VALUES (?)", [(i,) for i in only_ids])
        where.append("id IN (SELECT id FROM web_ids)")
    clause = " AND ".join(where)
    cursor = conn.cursor()
    cursor.row_factory = None
    columns = ", ".join(_COLUMNS)
    # Each row comes with how many rows match in all. A search reads every text once for both
    # (a window count); without one, the position index gives the page at once and a separate
    # count (evaluated once) is cheap.
    if query.q.strip():
        select = f"SELECT {columns}, COUNT(*) OVER () FROM records WHERE {clause}"
        select_params = list(params)
    else:
        select = (
            f"SELECT {columns}, (SELECT COUNT(*) FROM records WHERE {clause})"
            f" FROM records WHERE {clause}"
        )
        select_params = [*params, *params]

    def fetch(page: int) -> list[tuple[Any, ...]]:
        return cursor.execute(
            f"{select} ORDER BY position LIMIT ? OFFSET ?",
            [*select_params, page_size, (page - 1) * page_size],
        ).fetchall()

    page = max(1, query.page)
    rows = fetch(page)
    if rows:
        total = rows[0][-1]
    else:  # past the last page (or nothing matches): count, and show the last page
        total = conn.execute(f"SELECT COUNT(*) FROM records WHERE {clause}", params).fetchone()[0]
        if total:
            page = max(1, -(-total // page_size))
            rows = fetch(page)
    query.page = page
    pages = max(1, -(-total // page_size))
    return RecordPage(query, [_row_to_record(r[:-1]) for r in rows], total, pages)


def facets(conn: sqlite3.Connection, dataset: str) -> dict[str, list[str]]:
    """Values present in a dataset, for the filter menus."""
    row = conn.execute("SELECT id FROM datasets WHERE name = ?", (dataset,)).fetchone()
    if row is None:
        return {"category": [], "language": [], "split": [], "shard": []}
    out = {}
    for name in ("category", "language", "split", "shard"):
        values = conn.execute(
            f"SELECT DISTINCT {name} FROM records WHERE dataset_id = ? AND {name} IS NOT NULL"
            f" ORDER BY {name}",
            (row[0],),
        ).fetchall()
        out[name] = [str(v[0]) for v in values]
    return out


def latest_change(conn: sqlite3.Connection, dataset: str) -> int:
    row = conn.execute(
        "SELECT COALESCE(MAX(c.id), 0) FROM changesets c JOIN datasets d ON d.id = c.dataset_id"
        " WHERE d.name = ?",
        (dataset,),
    ).fetchone()
    return int(row[0])


# -- the garden page ------------------------------------------------------------------------------


def notes(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT d.id, d.source, d.title, d.kind, d.updated_at,"
        " (SELECT COUNT(*) FROM knowledge_chunks c WHERE c.document_id = d.id)"
        " FROM knowledge_documents d ORDER BY d.source"
    ).fetchall()
    return [
        {"id": r[0], "source": r[1], "title": r[2], "kind": r[3], "updated": r[4], "chunks": r[5]}
        for r in rows
    ]


def pending_counts(conn: sqlite3.Connection) -> dict[str, int]:
    rows = conn.execute(
        "SELECT kind, COUNT(*) FROM chat_feedback WHERE status = 'pending' GROUP BY kind"
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def run_rows(garden: Garden) -> list[dict[str, Any]]:
    """Every training run, newest first, with its summary and whether it is promoted."""
    from bonsai.runs import list_runs

    promoted = {r[0] for r in garden.db.execute("SELECT id FROM training_runs WHERE promoted = 1")}
    out = []
    for run in reversed(list_runs(garden)):
        summary = run.manifest.summary
        out.append(
            {
                "id": run.id,
                "dataset": run.dataset,
                "status": run.status,
                "parent": run.parent,
                "layout": run.manifest.layout,
                "created": run.manifest.created_at,
                "steps": summary.get("steps"),
                "total_steps": run.manifest.total_steps,
                "val_loss": summary.get("val_loss", summary.get("last_val")),
                "promoted": run.id in promoted,
                "live": run.is_live(),
            }
        )
    return out


def next_step(
    datasets: list[DatasetSummary], runs: list[dict[str, Any]], turns: int, pending: int
) -> tuple[str, str, str]:
    """(what to do next, why, the page that does it)."""
    if not datasets or not any(d.records for d in datasets):
        return ("Import your records", "the garden has no records yet", "/records")
    unreasoned = [d for d in datasets if d.with_reasoning < d.records]
    if unreasoned:
        d = unreasoned[0]
        missing = d.records - d.with_reasoning
        return ("Teach", f"{missing:,} records of {d.name} have no reasoning yet", "/teach")
    if not any(r["status"] == "finished" for r in runs):
        return ("Train", "no run has finished yet: train the student on your records", "/train")
    if turns == 0:
        return ("Chat", "talk to your bonsai and rate its answers", "/chat")
    if pending:
        return ("Review feedback, then grow", f"{pending} feedback waits", "/feedback")
    return ("Evaluate", "compare your runs per category", "/reports")


def chat_turn_count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM chat_turns").fetchone()[0])


def evaluations(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT id, run_id, against, kind, report, summary, created_at FROM evaluations"
        " ORDER BY id DESC"
    ).fetchall()
    out = []
    for r in rows:
        try:
            summary = json.loads(r[5] or "{}")
        except json.JSONDecodeError:
            summary = {}
        out.append(
            {
                "id": r[0],
                "run": r[1],
                "against": r[2],
                "kind": r[3],
                "report": r[4],
                "summary": summary,
                "created": r[6],
            }
        )
    return out
