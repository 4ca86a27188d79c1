"""``bonsai data check``: find what would hurt training before it happens."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from bonsai.cli.common import (
    DatasetOption,
    GardenOption,
    console,
    default_of,
    err_console,
    given,
    open_garden,
)
from bonsai.curate.check_args import CheckArgs

if TYPE_CHECKING:
    from bonsai.curate.check import CheckReport, Finding

_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
_SHOWN_IDS = 8
_TEXT_WIDTH = 70


def check(
    dataset: DatasetOption = None,
    garden: GardenOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the findings as JSON (a summary and a list).")
    ] = False,
    near_threshold: Annotated[
        float | None,
        typer.Option(
            "--near-threshold",
            help="How alike two instructions (and two inputs) must be to count as near-same: "
            "Jaccard similarity of character 3-grams, 0-1; 1 means equal after folding.",
            show_default=default_of(CheckArgs, "near_threshold"),
        ),
    ] = None,
    max_tokens: Annotated[
        int | None,
        typer.Option(
            "--max-tokens",
            help="Flag records longer than this, in the student's tokens.",
            show_default=default_of(CheckArgs, "max_tokens"),
        ),
    ] = None,
    no_tokens: Annotated[
        bool,
        typer.Option(
            "--no-tokens", help="Skip the length checks (no need to load the student's tokenizer)."
        ),
    ] = False,
    limit: Annotated[
        int,
        typer.Option(
            "--limit", min=0, help="Findings shown per code in the report; 0 shows them all."
        ),
    ] = 10,
) -> None:
    """Check a dataset: empty fields, duplicates, contradictions, outliers, limits.

    Also category/language mismatches (a translation with no source text) and reasoning over
    its limits (more than 5 lines or 120 words).

    A contradiction is the same (or a near-same) instruction and input with different answers
    in a category with one answer (open_qa, closed_qa, classification, translation): training
    on both pulls the model two ways.

    Exit code: 0 when clean or only info, 1 when there are warnings, 2 when there are errors
    (empty instruction or output, an unknown category, a contradiction on the very same prompt).
    """
    from bonsai.curate.check import check_records
    from bonsai.store import RecordStore

    config = CheckArgs(**given(near_threshold=near_threshold, max_tokens=max_tokens))
    g = open_garden(garden)
    dataset = g.choose_dataset(dataset)
    records = RecordStore(g.db).records(dataset)
    count_tokens = None
    model = g.config.student.base_model
    if not no_tokens and records:
        from bonsai.curate.tokens import token_counter

        with err_console.status(f"Loading the student's tokenizer ({escape(model)})…"):
            count_tokens = token_counter(model)
    with err_console.status(f"Checking {len(records):,} records…"):
        report = check_records(records, count_tokens, config, dataset=dataset)

    if as_json:
        # Plain print: rich would wrap long lines and break the JSON.
        print(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    else:
        _print_report(report, None if no_tokens else model, limit)
    raise typer.Exit(report.exit_code)


def _print_report(report: CheckReport, model: str | None, limit: int) -> None:
    from bonsai.curate.check import CODES, SEVERITIES

    seconds = sum(report.seconds.values())
    tokens = f"tokens of {escape(model)}" if model else "lengths not checked (--no-tokens)"
    console.print(
        f"Checked [bold]{report.records:,}[/] records of [bold]{escape(report.dataset or '')}[/]"
        f" in {seconds:.1f} s ({tokens})."
    )
    if not report.findings:
        console.print("[green]No findings: the dataset is clean.[/]")
        return

    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("severity")
    table.add_column("code")
    table.add_column("findings", justify="right")
    table.add_column("records", justify="right")
    findings: Counter[tuple[str, str]] = Counter()
    records: dict[tuple[str, str], set[str]] = defaultdict(set)
    for f in report.findings:
        findings[(f.severity, f.code)] += 1
        records[(f.severity, f.code)].update(f.record_ids)
    for severity in SEVERITIES:
        for code in CODES:
            if (severity, code) in findings:
                table.add_row(
                    f"[{_STYLE[severity]}]{severity}[/]",
                    code,
                    f"{findings[(severity, code)]:,}",
                    f"{len(records[(severity, code)]):,}",
                )
    console.print(table)

    for severity in SEVERITIES:
        for code in CODES:
            group = [f for f in report.findings if f.code == code and f.severity == severity]
            if group:
                _print_group(severity, code, CODES[code], group, limit)

    counts = report.by_severity()
    summary = ", ".join(_plural(counts[s], s) for s in SEVERITIES)
    console.print(f"\n{summary} → exit code {report.exit_code}")


def _plural(n: int, severity: str) -> str:
    return f"{n:,} {severity}" + ("s" if n != 1 and severity != "info" else "")


def _print_group(severity: str, code: str, about: str, group: list[Finding], limit: int) -> None:
    style = _STYLE[severity]
    console.print()
    console.rule(f"[{style}]{severity}[/] · [bold]{code}[/] ({len(group):,})", align="left")
    console.print(f"[dim]{escape(about)}[/]")
    shown = group if limit == 0 else group[:limit]
    for finding in shown:
        if finding.details.get("records"):
            _print_side_by_side(finding)
        else:
            _print_finding(finding)
    hidden = len(group) - len(shown)
    if hidden:
        console.print(f"  … and {hidden:,} more (--limit 0 shows all; --json lists them)")


def _print_finding(finding: Finding) -> None:
    if len(finding.record_ids) == 1:
        console.print(f"  • {escape(finding.record_ids[0])}: {escape(finding.message)}")
    else:
        console.print(f"  • {escape(finding.message)}")
        console.print(f"    [dim]{_ids(finding.record_ids)}[/]")


def _ids(ids: list[str]) -> str:
    text = ", ".join(escape(i) for i in ids[:_SHOWN_IDS])
    if len(ids) > _SHOWN_IDS:
        text += f" … and {len(ids) - _SHOWN_IDS:,} more"
    return text


def _short(text: str | None) -> str:
    one_line = " ".join((text or "").split())
    if len(one_line) > _TEXT_WIDTH:
        one_line = one_line[: _TEXT_WIDTH - 1] + "…"
    return escape(one_line)


def _print_side_by_side(finding: Finding) -> None:
    """The records of a contradiction or near-duplicate, one row each, grouped by answer."""
    console.print(f"  • {escape(finding.message)}")
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, header_style="bold")
    table.add_column("answer", justify="right")
    table.add_column("id")
    table.add_column("category")
    table.add_column("lang")
    table.add_column("instruction | input", ratio=1, overflow="fold")
    table.add_column("output", ratio=1, overflow="fold")
    rows = finding.details["records"]
    previous = None
    for row in rows[: _SHOWN_IDS * 2]:
        prompt = row["instruction"] + (f" | {row['input']}" if row["input"] else "")
        table.add_row(
            "" if row["answer"] == previous else chr(ord("A") + row["answer"] % 26),
            escape(row["id"]),
            escape(row["category"] or "-"),
            escape(row["language"] or "-"),
            _short(prompt),
            _short(row["output"]),
            end_section=False,
        )
        previous = row["answer"]
    console.print(table)
    if len(rows) > _SHOWN_IDS * 2:
        console.print(f"    … and {len(rows) - _SHOWN_IDS * 2:,} more records (--json lists them)")


def register(app: typer.Typer) -> None:
    app.command()(check)
