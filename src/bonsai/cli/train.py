"""``bonsai train``, ``bonsai runs [show RUN]`` and ``bonsai merge RUN --out DIR``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from bonsai.cli.common import GardenOption, console, err_console, open_garden, print_warning
from bonsai.errors import BonsaiError
from bonsai.garden import Garden
from bonsai.train.args import MAX_LENGTH_CAP

INTERRUPTED_EXIT = 130
"""Exit status after Ctrl-C saved a checkpoint (the shell's convention for SIGINT)."""


def train(
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset",
            "-d",
            help="Dataset to train on (default: default_dataset in bonsai.toml, or the garden's"
            " only dataset).",
            show_default=False,
        ),
    ] = None,
    garden: GardenOption = None,
    layout: Annotated[
        str | None,
        typer.Option(
            help="Prompt layout: bonsai-multitask (the answer at once; the reasoning a second "
            "training task), bonsai (reasoning, then the answer), bonsai-after (the answer, then "
            "the reasoning), bonsai-given (reasoning in the prompt) or alpaca. Default: the "
            "parent's; else bonsai-multitask if most records have a reasoning, else alpaca.",
            show_default=False,
        ),
    ] = None,
    base_model: Annotated[
        str | None,
        typer.Option(
            help="Model to fine-tune: embedded:gemma-3-270m, a Hugging Face id or a folder. "
            "Default: [student] base_model of bonsai.toml.",
            show_default=False,
        ),
    ] = None,
    shard: Annotated[
        int | None, typer.Option(help="Train on this shard only.", show_default=False)
    ] = None,
    epochs: Annotated[
        float | None,
        typer.Option(
            help="Passes over the data (default: from the data size, at most 2 when the run"
            " continues the nursery stock or an earlier run).",
            show_default=False,
        ),
    ] = None,
    max_steps: Annotated[
        int | None,
        typer.Option(help="Stop after this many optimizer steps.", show_default=False),
    ] = None,
    eval_every: Annotated[
        int | None,
        typer.Option(
            help="Validation loss every N steps (default: ~10 per run).", show_default=False
        ),
    ] = None,
    save_every: Annotated[
        int | None,
        typer.Option(
            help="Checkpoint every N steps (default: as --eval-every).", show_default=False
        ),
    ] = None,
    max_length: Annotated[
        int | None,
        typer.Option(
            help=f"Longest example in tokens (default: the longest, ≤{MAX_LENGTH_CAP}).",
            show_default=False,
        ),
    ] = None,
    overlong: Annotated[
        str | None,
        typer.Option(help="Longer examples: truncate (default) or skip.", show_default=False),
    ] = None,
    lr: Annotated[
        float | None, typer.Option(help="Peak learning rate (default 2e-4).", show_default=False)
    ] = None,
    batch_tokens: Annotated[
        int | None,
        typer.Option(
            help="Tokens per optimizer step (default: ~20 steps per epoch).", show_default=False
        ),
    ] = None,
    lora_rank: Annotated[
        int | None,
        typer.Option(help="LoRA rank (default: from the data size).", show_default=False),
    ] = None,
    precision: Annotated[
        str | None,
        typer.Option(
            help="bf16, fp32 or auto (default: whichever is faster here).", show_default=False
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Random seed (default 0).", show_default=False)
    ] = None,
    from_run: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="Continue this run's adapter (e.g. on the next shard); it becomes the parent. "
            "'base' starts from the bare model. Default: the nursery stock for the embedded "
            "student.",
            show_default=False,
        ),
    ] = None,
    notes: Annotated[
        str | None,
        typer.Option(
            help="Notes in the training prompts, as chat puts them there: auto (retrieved from "
            "the garden's notes for some records, other records' notes or none for the rest), "
            "off, or a JSON file of record id to notes text. Default: auto.",
            show_default=False,
        ),
    ] = None,
    reading: Annotated[
        str | None,
        typer.Option(
            help="Reading records: on (questions made from the garden's notes, each answered "
            "with the sentence that holds the answer) or off. Default: off.",
            show_default=False,
        ),
    ] = None,
    rehearsal: Annotated[
        str | None,
        typer.Option(
            help="Rehearsal: on (a run that continues the nursery stock also trains on some of "
            "the stock's own records, one for every two of yours, meant to keep its general "
            "skills from fading) or off. Default: off.",
            show_default=False,
        ),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume", help="Continue the latest unfinished run exactly where it stopped."
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Show rendered examples with their masks; train nothing."),
    ] = False,
) -> None:
    """Fine-tune the student with LoRA on a dataset's records.

    Each run gets a folder runs/RUN-ID/ in the garden with the adapter, a manifest, metrics and
    loss curves. Ctrl-C saves a checkpoint and exits with status 130; --resume continues it on
    the same curve. Settings left out are derived from the model and the data, and printed.
    """
    from bonsai.train.args import TrainArgs
    from bonsai.train.loop import resume as resume_run
    from bonsai.train.loop import train as train_run

    g = open_garden(garden)
    flags = {
        "layout": layout,
        "base_model": base_model,
        "shard": shard,
        "epochs": epochs,
        "max_steps": max_steps,
        "eval_every": eval_every,
        "save_every": save_every,
        "max_length": max_length,
        "overlong": overlong,
        "lr": lr,
        "batch_tokens": batch_tokens,
        "lora_rank": lora_rank,
        "precision": precision,
        "seed": seed,
        "from_run": from_run,
        "notes": notes,
        "reading": reading,
        "rehearsal": rehearsal,
    }
    if resume:
        given = [f"--{k.replace('_', '-')}" for k, v in flags.items() if v is not None]
        if given or dry_run:
            extra = ", ".join(given) or "--dry-run"
            raise BonsaiError(f"--resume continues a run with its own settings; leave out {extra}")
        run = resume_run(g, dataset=dataset, console=console)
    else:
        dataset = g.choose_dataset(dataset)
        _warn_on_check_errors(g, dataset)
        run = train_run(g, TrainArgs.from_flags(dataset, dry_run=dry_run, **flags), console=console)
    if run is not None and run.status == "interrupted":
        raise typer.Exit(INTERRUPTED_EXIT)


def _warn_on_check_errors(g: Garden, dataset: str) -> None:
    """Training goes on, but a keeper should know what `bonsai data check` would refuse."""
    from bonsai.curate.check import check_records
    from bonsai.store import RecordStore

    errors = [
        f
        for f in check_records(RecordStore(g.db).records(dataset)).findings
        if f.severity == "error"
    ]
    if not errors:
        return
    first = errors[0]
    example = f"{first.message} ({', '.join(first.record_ids[:3])})"
    print_warning(
        f"`bonsai data check` finds {len(errors)} error(s) in dataset '{dataset}', e.g."
        f" {example}; training goes on. `bonsai data check --dataset {dataset}` lists"
        " them, `bonsai data edit` or `rm` fixes them."
    )


class _RunsGroup(TyperGroup):
    """``bonsai runs ID`` and ``bonsai runs latest`` mean ``bonsai runs show …``."""

    _VALUE_OPTIONS = frozenset({"--garden", "-g", "--dataset", "-d"})

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if self._run_named(args):
            args = ["show", *args]
        return super().parse_args(ctx, args)

    def _run_named(self, args: list[str]) -> bool:
        takes_value = False
        for arg in args:
            if takes_value:
                takes_value = False
            elif arg in self._VALUE_OPTIONS:
                takes_value = True
            elif not arg.startswith("-"):
                return arg not in self.commands
        return False


runs_app = typer.Typer(
    cls=_RunsGroup,
    help="List training runs (the promoted one marked), or show one: bonsai runs ID|latest.",
    no_args_is_help=False,
    invoke_without_command=True,
)


@runs_app.callback()
def runs_list(
    ctx: typer.Context,
    garden: GardenOption = None,
    dataset: Annotated[
        str | None,
        typer.Option("--dataset", "-d", help="Only this dataset's runs.", show_default=False),
    ] = None,
) -> None:
    """List the garden's training runs (oldest first)."""
    if ctx.invoked_subcommand is not None:
        return
    from bonsai.runs import list_runs, promoted_run
    from bonsai.train.report import runs_table

    g = open_garden(garden)
    found = list_runs(g, dataset=dataset)
    if not found:
        console.print("No training runs yet. `bonsai train --dataset NAME` starts one.")
        return
    promoted = promoted_run(g)
    console.print(runs_table(found, promoted.id if promoted else None))


@runs_app.command("show")
def runs_show(
    run: Annotated[
        str, typer.Argument(help="Run id (or its start, or 'latest').", show_default=False)
    ],
    garden: GardenOption = None,
) -> None:
    """Summarise a run: data, settings, losses overall and per category, warnings, files."""
    from bonsai.runs import load_run, promoted_run, read_metrics
    from bonsai.train.report import show_run

    g = open_garden(garden)
    found = load_run(g, run)
    promoted = promoted_run(g)
    show_run(
        found,
        read_metrics(found),
        console,
        promoted=promoted is not None and promoted.id == found.id,
    )


def merge(
    run: Annotated[
        str, typer.Argument(help="Run id (or its start, or 'latest').", show_default=False)
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Folder for the merged model (with --gguf: the file; default <run>/model.gguf).",
            show_default=False,
        ),
    ] = None,
    gguf: Annotated[
        bool,
        typer.Option(
            "--gguf",
            help="Write one GGUF file for llama.cpp instead (runs on the embedded student).",
        ),
    ] = False,
    gguf_type: Annotated[
        str,
        typer.Option(
            "--gguf-type",
            help="How the layers the adapter changed are stored: f16 (faithful) or q8_0 "
            "(smaller and faster; its rounding is as large as a short run's LoRA change).",
        ),
    ] = "f16",
    garden: GardenOption = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output folder.")] = False,
) -> None:
    """Fold a run's LoRA adapter into its base model: a folder plain transformers loads, or
    with --gguf a GGUF file that `bonsai chat --engine llama` runs."""
    if out is not None:
        from bonsai.garden import check_output_path

        check_output_path(out, folder=not gguf, garden=open_garden(garden).root)
    if gguf:
        from rich.progress import Progress

        from bonsai.train.merge import merge_run_gguf

        with Progress(console=err_console, transient=True) as progress:
            task = progress.add_task("Writing the GGUF", total=None)
            written = merge_run_gguf(
                open_garden(garden),
                run,
                out,
                merged_type=gguf_type,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
        console.print(
            f"GGUF written to [bold]{written.path}[/] ({written.bytes / 1e6:.0f} MB; "
            f"{written.changed} layers merged as {gguf_type.upper()}, {written.copied} tensors "
            "copied)"
        )
        return
    if out is None:
        raise BonsaiError("name the folder for the merged model", field="out", hint="--out DIR")
    from bonsai.train.merge import merge_run

    written_dir = merge_run(open_garden(garden), run, out, overwrite=overwrite)
    console.print(f"Merged model written to [bold]{written_dir}[/]")


def register(app: typer.Typer) -> None:
    app.command()(train)
    app.add_typer(runs_app, name="runs")
    app.command()(merge)
