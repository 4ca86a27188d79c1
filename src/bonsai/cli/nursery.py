"""``bonsai nursery build`` and ``bonsai nursery show``: the starter adapter."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bonsai.cli.common import console, err_console

app = typer.Typer(
    help="The nursery stock: the starter adapter every keeper's first round grows from.",
    no_args_is_help=True,
)


@app.command()
def build(
    data: Annotated[
        Path,
        typer.Option(
            "--data",
            help="The shared data folder (dolly-ja/, dolly/, enja-pairs/).",
            show_default=False,
        ),
    ],
    work: Annotated[
        Path,
        typer.Option(help="Work garden: records, runs, checkpoints (a rerun resumes here)."),
    ] = Path("nursery-work"),
    out: Annotated[
        Path | None,
        typer.Option(
            help="Where to write the stock (default: the stock folder of the installed package).",
            show_default=False,
        ),
    ] = None,
    per_shard: Annotated[
        int, typer.Option(help="Japanese Dolly records in shards A and B.")
    ] = 5000,
    pairs_per_shard: Annotated[
        int,
        typer.Option(
            help="Translation records (from sentence pairs) in shards A and B; C takes half."
        ),
    ] = 1200,
    micro_tokens: Annotated[
        int | None,
        typer.Option(help="Tokens per forward pass (default: derived).", show_default=False),
    ] = None,
    batch_tokens: Annotated[
        int | None,
        typer.Option(help="Tokens per optimizer step (default: derived).", show_default=False),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seeds the deal of the records and the run.")] = 0,
    max_steps: Annotated[
        int | None,
        typer.Option(help="Stop each shard after N steps (a shorter build).", show_default=False),
    ] = None,
    eval_every: Annotated[
        int | None,
        typer.Option(help="Validation loss every N steps (default: derived).", show_default=False),
    ] = None,
    val_records: Annotated[
        int, typer.Option(help="Japanese Dolly records held out for validation.")
    ] = 300,
    val_pairs: Annotated[int, typer.Option(help="Translation records held out.")] = 200,
    shards: Annotated[
        int,
        typer.Option(
            help="Shards to train, A first: 1 (A only, a shorter build), 2 (A, then B), "
            "3 (then C, reading)."
        ),
    ] = 2,
    continue_stock: Annotated[
        bool,
        typer.Option(
            "--continue-stock",
            help="Start from the shipped stock and train only the shards it was not grown on.",
        ),
    ] = False,
    records_only: Annotated[
        bool, typer.Option("--records-only", help="Deal and write the records; train nothing.")
    ] = False,
    rehearsal_only: Annotated[
        bool,
        typer.Option(
            "--rehearsal-only",
            help="Deal the records and write the stock's rehearsal.jsonl alone; train nothing.",
        ),
    ] = False,
) -> None:
    """Grow the nursery stock from the shared open data: shard A, then B (then C, reading).

    About two hours on a 2-core CPU with the defaults. Progress is shown; a killed build
    resumes where it stopped when you run the same command again.
    """
    from bonsai.nursery.build import NurseryConfig
    from bonsai.nursery.build import build as build_stock

    config = NurseryConfig(
        data_dir=data,
        work_dir=work,
        out_dir=out,
        dolly_ja_per_shard=per_shard,
        pairs_per_shard=pairs_per_shard,
        micro_tokens=micro_tokens,
        batch_tokens=batch_tokens,
        seed=seed,
        max_steps=max_steps,
        eval_every=eval_every,
        val_records=val_records,
        val_pairs=val_pairs,
        shards=shards,
        only_records=records_only,
        only_rehearsal=rehearsal_only,
        continue_stock=continue_stock,
    )
    written = build_stock(config, err_console)
    if written is not None:
        console.print(f"Nursery stock written to [bold]{written}[/]")


@app.command()
def show() -> None:
    """What the shipped nursery stock was grown from, and its held-out loss per shard."""
    from bonsai.nursery import STOCK_DIR, stock_manifest

    manifest = stock_manifest()
    if manifest is None:
        console.print("No nursery stock is shipped with this installation.")
        raise typer.Exit(1)
    info = manifest.get("nursery", {})
    console.print(f"Nursery stock in {STOCK_DIR}")
    console.print(f"  base model: {manifest['base_model']['name']}, layout {manifest['layout']}")
    for part, row in info.get("records", {}).items():
        total = sum(row.values())
        console.print(f"  {part}: {total} records")
    for step in info.get("lineage", []):
        summary = step.get("summary", {})
        loss = summary.get("val_loss")
        console.print(
            f"  shard {step['shard']}: run {step['run']}, {summary.get('steps', '?')} steps, "
            f"{summary.get('tokens', 0):,} tokens, "
            f"validation loss {f'{loss:.3f}' if isinstance(loss, float) else '?'}"
        )


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="nursery")
