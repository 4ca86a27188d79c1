"""``bonsai eval``: measure a run per category against its parent and the base model."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from bonsai.cli.common import GardenOption, console, default_of, given, open_garden
from bonsai.errors import BonsaiError
from bonsai.evaluate.args import REASONING_TOKENS, EvalArgs

if TYPE_CHECKING:
    from bonsai.evaluate.results import Delta


def eval_command(
    run: Annotated[
        str | None,
        typer.Argument(
            help="Run to evaluate: its id (see `bonsai runs`) or 'latest'.", show_default=False
        ),
    ] = None,
    against: Annotated[
        list[str] | None,
        typer.Option(
            "--against",
            "-a",
            help="Compare with this run id, 'parent' or 'base' (repeatable). "
            "Default: the run's parent, if any, and the base model.",
            show_default=False,
        ),
    ] = None,
    probes: Annotated[
        Path | None,
        typer.Option(
            help="Your own probes: JSONL (or a JSON array) with instruction, output, category "
            "and optionally input, language, accept.",
            show_default=False,
        ),
    ] = None,
    builtin_probes: Annotated[
        bool,
        typer.Option(
            "--builtin-probes/--no-builtin-probes",
            help="Also ask the built-in probes (facts and capitals in ja/en/zh, J→E/E→J).",
        ),
    ] = True,
    seed_probes: Annotated[
        int,
        typer.Option(
            help="Sentence pairs from the Alpaca seed tasks, asked J→E and E→J, when that "
            "data is installed beside BONSAI (0: none).",
        ),
    ] = 5,
    max_items: Annotated[
        int | None,
        typer.Option(help="Validation records asked at most, spread over categories."),
    ] = None,
    max_probes: Annotated[
        int | None, typer.Option(help="Probes asked at most, spread over categories.")
    ] = None,
    max_new_tokens: Annotated[
        int | None,
        typer.Option(
            help="Longest answer, in tokens "
            f"(+{REASONING_TOKENS} for a bonsai-layout run's reasoning).",
            show_default=default_of(EvalArgs, "max_new_tokens"),
        ),
    ] = None,
    rag: Annotated[
        bool,
        typer.Option(
            "--rag/--no-rag",
            help="Retrieve from the garden's notes and records into the prompt, as chat does.",
        ),
    ] = True,
    losses: Annotated[
        bool,
        typer.Option(
            "--losses/--no-losses",
            help="Measure validation loss per record (and the loss-outlier contradiction check).",
        ),
    ] = True,
    outliers: Annotated[
        bool,
        typer.Option(
            "--outliers/--no-outliers",
            help="Measure the run's loss on its training records to find the ones it cannot "
            "fit (suspected contradictions).",
        ),
    ] = True,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for the report (default: the run's folder).", show_default=False),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            help="Seed for bootstrap and item sampling.", show_default=default_of(EvalArgs, "seed")
        ),
    ] = None,
    ablation: Annotated[
        bool,
        typer.Option(
            "--ablation",
            help="Train the dataset with the alpaca and the bonsai layout on equal budgets, "
            "evaluate both, and report the difference per category.",
        ),
    ] = False,
    dataset: Annotated[
        str | None,
        typer.Option("--dataset", "-d", help="Dataset for --ablation.", show_default=False),
    ] = None,
    max_steps: Annotated[
        int | None,
        typer.Option(help="Training steps per layout in --ablation.", show_default=False),
    ] = None,
    epochs: Annotated[
        float | None,
        typer.Option(
            help="Epochs per layout in --ablation (instead of --max-steps).", show_default=False
        ),
    ] = None,
    garden: GardenOption = None,
) -> None:
    """Evaluate a run per category, side by side with its parent and the base model.

    Every model answers the validation split and the probes greedily, asked
    exactly as `bonsai chat` asks: the same prompt, with the notes retrieval
    finds (--no-rag: without). Scores: facts recall on probes, contains/exact
    match (QA), the label (classification), chrF per direction and the reply
    in the target language (translation), chrF against the keeper's answer
    (brainstorming, creative), replies with two or more questions
    (question_to_question), loops everywhere; repeated lines, distinct-n and
    length; deltas with 95% bootstrap intervals. Diagnostics: memorisation,
    suspected contradictions, loss by category and language. Writes a
    self-contained report-*.html and its JSON into the run's folder.
    """
    from bonsai.evaluate.args import AblationArgs
    from bonsai.evaluate.progress import RichPhases

    g = open_garden(garden)
    common: dict[str, Any] = dict(
        probes=probes,
        builtin_probes=builtin_probes,
        seed_probes=seed_probes,
        max_items=max_items,
        max_probes=max_probes,
        rag=rag,
        losses=losses,
        outliers=outliers,
        out=out,
        **given(max_new_tokens=max_new_tokens, seed=seed),
    )
    phases = RichPhases(console)
    if ablation:
        if run is not None:
            raise BonsaiError("--ablation trains its own runs: pass --dataset NAME, not a run id")
        from bonsai.evaluate.ablation import run_ablation

        args = AblationArgs(
            dataset=dataset or "",
            max_steps=max_steps,
            epochs=epochs,
            **given(seed=seed),
            eval=EvalArgs(run="(ablation)", **common),
        )
        try:
            outcome = run_ablation(g, args, phases=phases, console=console)
        finally:
            phases.close()
        _print_outcome(outcome.results, outcome.html, outcome.json)
        return
    if run is None:
        raise BonsaiError("which run? pass a run id (see `bonsai runs`) or 'latest'", field="run")
    if dataset is not None or max_steps is not None or epochs is not None:
        raise BonsaiError("--dataset, --max-steps and --epochs go with --ablation")
    from bonsai.evaluate.runner import evaluate

    eval_args = EvalArgs(run=run, against=list(against or []), **common)
    console.print(f"Evaluating run [bold]{escape(eval_args.run)}[/]")
    try:
        outcome = evaluate(g, eval_args, phases=phases)
    finally:
        phases.close()
    _print_outcome(outcome.results, outcome.html, outcome.json)


def _print_outcome(results: dict[str, Any], html: Path, json_path: Path) -> None:
    from bonsai.evaluate.results import delta_of, metric_cell
    from bonsai.evaluate.scoring import HEADLINE

    primary = results["primary"]
    others = [m["key"] for m in results["models"] if m["key"] != primary]
    table = Table(title=f"{primary} per category (headline metric)", title_justify="left")
    table.add_column("category")
    table.add_column("metric")
    table.add_column("n", justify="right")
    table.add_column(primary, justify="right")
    for other in others:
        table.add_column(f"Δ vs {other} [95% CI]", justify="right")
    for category, cell in results["summary"][primary].items():
        metric, _ = HEADLINE[category]
        headline = metric_cell(results, primary, category, metric)
        row = [category, metric, str(cell["n"]), _num(headline.mean if headline else None)]
        for other in others:
            row.append(_delta(delta_of(results, other, category, metric)))
        table.add_row(*row)
    console.print(table)
    console.print(_side_by_side(results))
    chat = (results.get("settings") or {}).get("chat") or {}
    if chat:
        console.print(
            f"Asked as chat asks: notes {'on' if chat.get('rag') else 'off'}"
            f" (k={chat.get('k')}, {chat.get('focus', 0)} lines a section for questions read from"
            f" them), {chat.get('prompts_with_notes', 0)} prompt(s) carried notes."
        )
    memo = (results.get("diagnostics") or {}).get("memorisation")
    if memo:
        console.print(f"Memorisation: [bold]{memo['verdict']}[/]")
    found = (results.get("diagnostics") or {}).get("contradictions") or []
    if found:
        console.print(
            "Suspected contradictions: "
            + "; ".join(escape(", ".join(c["records"])) for c in found[:5])
        )
    console.print(f"Report: [bold]{escape(str(html))}[/]")
    console.print(f"  (results as JSON: {escape(str(json_path))})")


SIDE_BY_SIDE = {
    "open_qa": ("facts", "contains"),
    "closed_qa": ("facts", "contains"),
    "classification": ("label",),
    "translation": ("chrf", "target_language"),
    "brainstorming": ("ref_chrf",),
    "creative": ("ref_chrf",),
    "question_to_question": ("two_questions",),
}
"""Per category, the numbers a keeper reads first; loops are shown for every category."""


def _side_by_side(results: dict[str, Any]) -> Table:
    """Every model's mean of the key numbers per category, tuned first."""
    from bonsai.evaluate.results import metric_cell

    keys = [m["key"] for m in results["models"]]
    table = Table(title="Side by side (means)", title_justify="left")
    for name in ("category", "metric", "n", *keys):
        table.add_column(name, justify="left" if name in ("category", "metric") else "right")
    primary = results["summary"][results["primary"]]
    for category, cell in primary.items():
        for metric in (*SIDE_BY_SIDE.get(category, ()), "loop"):
            found = cell["metrics"].get(metric)
            if not found:
                continue
            means = [metric_cell(results, k, category, metric) for k in keys]
            table.add_row(
                category,
                metric,
                str(found.get("n", cell["n"])),
                *[_num(m.mean if m else None) for m in means],
            )
    return table


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}" if abs(value) <= 1 else f"{value:.1f}"


def _delta(d: Delta | None) -> str:
    if not d or d.delta is None:
        return "–"
    text = f"{d.delta:+.3f}" if abs(d.delta) <= 1 else f"{d.delta:+.1f}"
    if d.low is not None and d.high is not None:
        text += f" [{d.low:+.2f}, {d.high:+.2f}]"
    return f"[green]{text}[/]" if d.significant and d.delta > 0 else text


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
