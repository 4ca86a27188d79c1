"""Everything a run decides before it loads the model: records, split, layout, examples, the
derived settings and the step plan. ``--dry-run`` stops here."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from bonsai.errors import BonsaiError
from bonsai.garden import Garden
from bonsai.layouts import BASE, DEFAULT_REASONING_LAYOUT
from bonsai.nursery.rehearsal import Rehearsal
from bonsai.records import Record
from bonsai.runs import Run, load_run
from bonsai.store import RecordStore
from bonsai.train.args import DataStats, TrainArgs, derive, derive_max_length, derive_schedule
from bonsai.train.data import (
    DataReport,
    Example,
    SplitChoice,
    choose_split,
    data_hash,
    epoch_order,
    fit_length,
    pack,
    split_by_ids,
    steps_of,
    tokenise,
)
from bonsai.train.model import check_base_model
from bonsai.train.notes import training_notes
from bonsai.train.reading import Reading, note_sections, reading_records

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


@dataclass
class StepPlan:
    """One optimizer step: its epoch and the packed rows (example indices) it trains on."""

    epoch: int
    rows: list[list[int]]


@dataclass
class Prepared:
    """A run, decided: settings, data, and the plan of every step."""

    args: TrainArgs
    """The settings with every derived value filled in."""
    base_model: str
    layout: str
    tokenizer: PreTrainedTokenizerBase
    train: list[Example]
    val: list[Example]
    train_report: DataReport
    val_report: DataReport
    split: SplitChoice
    plan: list[StepPlan]
    steps_per_epoch: list[int]
    parent: Run | None = None
    notes: list[str] = field(default_factory=list)
    """One line per value that was derived or inherited, and why."""
    warnings: list[str] = field(default_factory=list)

    @property
    def total_steps(self) -> int:
        return len(self.plan)

    @property
    def data_hash(self) -> str:
        return data_hash(self.layout, self.train, self.val)

    @property
    def plan_hash(self) -> str:
        digest = hashlib.sha256(json.dumps([[s.epoch, s.rows] for s in self.plan]).encode())
        return digest.hexdigest()[:16]

    @property
    def train_tokens(self) -> int:
        return sum(len(e.input_ids) for e in self.train)

    def data_manifest(self) -> dict[str, Any]:
        return {
            "hash": self.data_hash,
            "train_examples": len(self.train),
            "val_examples": len(self.val),
            "train_tokens": self.train_tokens,
            "train_loss_tokens": sum(e.n_target for e in self.train),
            "val_tokens": sum(len(e.input_ids) for e in self.val),
            "split": "made for this run" if self.split.made_here else "the dataset's",
            "val_ids": [r.id for r in self.split.val] if self.split.made_here else None,
            "train": self.train_report.to_dict(),
            "val": self.val_report.to_dict(),
            "steps_per_epoch": self.steps_per_epoch,
        }


def _records(
    store: RecordStore, dataset: str, shard: int | None
) -> tuple[list[Record], list[Record], list[Record]]:
    """(train, val, unsplit) records of the dataset; train and unsplit only from ``shard``."""
    everything = store.records(dataset)
    if not everything:
        raise BonsaiError(f"dataset '{dataset}' has no records", hint="`bonsai data import`")
    val = [r for r in everything if r.split == "val"]
    pool = [r for r in everything if r.split != "val"]
    if shard is not None:
        shards = sorted({r.shard for r in pool if r.shard is not None})
        pool = [r for r in pool if r.shard == shard]
        if not pool:
            known = ", ".join(map(str, shards)) or "none (`bonsai data split --shards N`)"
            raise BonsaiError(
                f"dataset '{dataset}' has no shard {shard}", field="shard", hint=f"shards: {known}"
            )
    train = [r for r in pool if r.split == "train"]
    unsplit = [r for r in pool if r.split is None]
    return train, val, unsplit


def _starting_point(garden: Garden, args: TrainArgs) -> tuple[TrainArgs, list[str]]:
    """Which adapter the run continues: ``--from RUN``, ``--from base`` (none), or by default
    the nursery stock when it was grown on the run's base model."""
    from bonsai.nursery import install_stock, stock_fits

    if args.from_run is not None:
        return args, []
    base_model = args.base_model or garden.config.student.base_model
    if not stock_fits(base_model):
        return replace(args, from_run=BASE), []
    run_id = install_stock(garden)
    note = f"starting from the nursery stock (run {run_id}); --from base starts from the bare model"
    return replace(args, from_run=run_id), [note]


def _choose_layout(args: TrainArgs, parent: Run | None, records: list[Record]) -> tuple[str, str]:
    if args.layout is not None:
        return args.layout, "given"
    if parent is not None:
        return parent.manifest.layout, f"inherited from run {parent.id}"
    with_reasoning = sum(1 for r in records if (r.reasoning or "").strip())
    share = with_reasoning / max(1, len(records))
    if share >= 0.5:
        return DEFAULT_REASONING_LAYOUT, f"{share:.0%} of the training records have a reasoning"
    return "alpaca", f"only {share:.0%} of the training records have a reasoning"


def _inherit_lora(args: TrainArgs, parent: Run) -> tuple[TrainArgs, list[str]]:
    """A child continues its parent's adapter, so the adapter's shape is the parent's."""
    given = parent.manifest.args
    notes = []
    for name in ("lora_rank", "lora_alpha", "lora_targets"):
        mine, theirs = getattr(args, name), given[name]
        if mine is not None and name != "lora_targets" and mine != theirs:
            raise BonsaiError(
                f"--from {parent.id}: its adapter has {name} {theirs}, not {mine}",
                field=name,
                hint="leave it out to continue the parent's adapter",
            )
        args = replace(args, **{name: theirs})
    notes.append(
        f"LoRA rank {given['lora_rank']}, alpha {given['lora_alpha']:g}, targets "
        f"{given['lora_targets']} (inherited from run {parent.id})"
    )
    return args, notes


def plan_steps(
    examples: list[Example], args: TrainArgs, world: int
) -> tuple[list[StepPlan], list[int]]:
    """Every optimizer step of the run, and the number of steps of each epoch.

    ``batch_tokens`` is the global budget of a step: it becomes ``rows_per_step`` packed rows of
    up to ``micro_tokens`` tokens, a multiple of the number of processes so each gets its share.
    """
    assert args.batch_tokens and args.micro_tokens
    rows_per_step = max(1, math.ceil(args.batch_tokens / args.micro_tokens))
    rows_per_step = math.ceil(rows_per_step / world) * world
    plan: list[StepPlan] = []
    per_epoch: list[int] = []
    epoch = 0
    wanted = args.max_steps
    while True:
        order = epoch_order(len(examples), args.seed, epoch)
        steps = steps_of(pack(order, examples, args.micro_tokens), rows_per_step)
        per_epoch.append(len(steps))
        if wanted is None:
            assert args.epochs is not None
            if epoch + 1 > args.epochs:  # a fractional last epoch
                steps = steps[: max(1, math.ceil((args.epochs - epoch) * len(steps)))]
            plan.extend(StepPlan(epoch, rows) for rows in steps)
            if epoch + 1 >= args.epochs:
                break
        else:
            plan.extend(StepPlan(epoch, rows) for rows in steps[: wanted - len(plan)])
            if len(plan) >= wanted:
                break
        epoch += 1
    return plan, per_epoch


def prepare(
    garden: Garden,
    args: TrainArgs,
    *,
    val_ids: list[str] | None = None,
    world: int = 1,
) -> Prepared:
    """Decide a run: read the records, split, tokenise, derive settings, plan every step."""
    from bonsai.student import load_tokenizer

    notes: list[str] = []
    warnings: list[str] = []
    args, started = _starting_point(garden, args)
    notes += started
    parent = load_run(garden, args.from_run) if args.from_run not in (None, BASE) else None
    if parent is not None:
        parent.final_adapter()  # fail now, not after the data is ready, if it has none
        args, inherited = _inherit_lora(args, parent)
        notes += inherited

    base_model = args.base_model
    if base_model is None:
        if parent is not None:
            base_model = parent.manifest.base_model_name
            notes.append(f"base model {base_model} (inherited from run {parent.id})")
        else:
            base_model = garden.config.student.base_model
            notes.append(f"base model {base_model} (from bonsai.toml)")
    elif parent is not None and base_model != parent.manifest.base_model_name:
        raise BonsaiError(
            f"--from {parent.id}: its adapter belongs to {parent.manifest.base_model_name}",
            field="base_model",
        )

    store = RecordStore(garden.db)
    train_records, val_records, unsplit = _records(store, args.dataset, args.shard)
    if val_ids is not None:
        split = split_by_ids(train_records + unsplit, val_ids)
    else:
        split = choose_split(
            train_records, val_records, unsplit, fraction=args.val_fraction, seed=args.seed
        )
        if split.made_here:
            warnings.append(
                f"dataset '{args.dataset}' has no validation split: this run validates on "
                f"{len(split.val)} of its records ({args.val_fraction:.0%}, stratified by "
                "category). It is not stored; `bonsai data split --val 0.1` makes a lasting one."
            )

    layout, why = _choose_layout(args, parent, split.train)
    if why != "given":
        notes.append(f"layout {layout} ({why})")

    check_base_model(base_model)
    tokenizer = load_tokenizer(base_model)
    train_report, val_report = DataReport(), DataReport()
    prompts = [*split.train, *split.val]
    notes_by_id = training_notes(garden, prompts, args.notes, args.seed)
    if notes_by_id:
        # A notes file may hold notes for records of other shards: count this run's prompts.
        with_notes = sum(record.id in notes_by_id for record in prompts)
        notes.append(f"notes in {with_notes} of {len(prompts)} prompts (--notes {args.notes})")
    train = tokenise(split.train, tokenizer, layout, report=train_report, notes=notes_by_id)
    reading = _reading(garden, args, len(split.train))
    if reading.records:
        notes.append(
            f"{len(reading.records)} reading records from {reading.sections} note sections "
            f"(--reading {args.reading})"
        )
        train += _added(reading.records, reading.notes, tokenizer, layout, train_report)
    rehearsal = _rehearsal(garden, args, parent, len(split.train))
    if args.rehearsal == "on" and not rehearsal.records:
        warnings.append(
            "--rehearsal on: nothing to rehearse (the run does not grow from a nursery stock "
            "that ships rehearsal records, or has too few records)"
        )
    if rehearsal.records:
        notes.append(
            f"{len(rehearsal.records)} rehearsal records from the nursery stock "
            f"(--rehearsal {args.rehearsal})"
        )
        train += _added(rehearsal.records, rehearsal.notes, tokenizer, layout, train_report)
    val = tokenise(
        split.val, tokenizer, layout, report=val_report, notes=notes_by_id, all_tasks=False
    )

    max_length, why = derive_max_length(
        args, max(train_report.longest, val_report.longest), _model_max_length(base_model)
    )
    if why != "given":
        notes.append(f"max_length {max_length} ({why})")
    train = fit_length(train, max_length, args.overlong, train_report)
    val = fit_length(val, max_length, args.overlong, val_report)
    for part, report in (("training", train_report), ("validation", val_report)):
        for reason, count in sorted(report.skipped.items()):
            warnings.append(f"{count} {part} record(s) skipped: {reason}")
        if report.truncated:
            warnings.append(
                f"{report.truncated} {part} record(s) longer than {max_length} tokens were "
                "truncated (their target's end, and its EOS, are not trained)"
            )
    for part, examples, report in (
        ("training", train, train_report),
        ("validation", val, val_report),
    ):
        if not examples:
            reasons = ", ".join(f"{n} {why}" for why, n in sorted(report.skipped.items()))
            raise BonsaiError(
                f"no {part} examples left in dataset '{args.dataset}' for layout '{layout}' "
                f"({report.records} records; skipped: {reasons or 'none'})",
                hint="`--layout alpaca` needs no reasoning; a larger --max-length keeps long ones",
            )

    args = replace(args, max_length=max_length, layout=layout, base_model=base_model)
    stats = DataStats(len(train), sum(len(e.input_ids) for e in train), train_report.longest)
    args, derived = derive(args, stats)
    notes += derived
    plan, per_epoch = plan_steps(train, args, world)
    args, scheduled = derive_schedule(args, len(plan))
    notes += scheduled
    return Prepared(
        args=args,
        base_model=base_model,
        layout=layout,
        tokenizer=tokenizer,
        train=train,
        val=val,
        train_report=train_report,
        val_report=val_report,
        split=split,
        plan=plan,
        steps_per_epoch=per_epoch,
        parent=parent,
        notes=notes,
        warnings=warnings,
    )


def _added(
    records: list[Record],
    notes: dict[str, str],
    tokenizer: PreTrainedTokenizerBase,
    layout: str,
    train_report: DataReport,
) -> list[Example]:
    """Examples of records a run adds to the dataset's (reading, rehearsal): the answer only.
    Their longest counts toward the derived max_length, so none is cut for being added."""
    added = DataReport()
    examples = tokenise(records, tokenizer, layout, report=added, notes=notes, all_tasks=False)
    train_report.longest = max(train_report.longest, added.longest)
    return examples


def _reading(garden: Garden, args: TrainArgs, n_train: int) -> Reading:
    """The run's reading records: at most a quarter as many as its training records."""
    if args.reading == "off":
        return Reading()
    sections = note_sections(garden.db)
    if not sections:
        return Reading()
    from bonsai.chat.session import ChatArgs, garden_retriever

    chat = ChatArgs()
    return reading_records(
        sections,
        garden_retriever(garden.db),
        seed=args.seed,
        limit=n_train // 4,
        k=chat.k,
        max_chars=chat.max_notes_chars,
    )


def _rehearsal(garden: Garden, args: TrainArgs, parent: Run | None, n_train: int) -> Rehearsal:
    """Some of the nursery's own records, when the run grows from the stock (directly or
    through earlier rounds): at most one for every two training records."""
    from bonsai.nursery import STOCK_DIR, stock_ancestor, stock_manifest, stock_run_id
    from bonsai.nursery import rehearsal as shipped

    if args.rehearsal == "off":
        return Rehearsal()
    ancestor = stock_ancestor(garden, parent)
    if ancestor is None:
        return Rehearsal()
    found = shipped.load(ancestor.dir / shipped.REHEARSAL_FILE)
    manifest = stock_manifest()
    if not found.records and manifest is not None and stock_run_id(manifest) == ancestor.id:
        # A garden that took the stock in before it shipped rehearsal records.
        found = shipped.load(STOCK_DIR / shipped.REHEARSAL_FILE)
    return shipped.draw(found, n_train, args.seed)


def _model_max_length(name: str) -> int | None:
    from transformers import AutoConfig

    from bonsai.student import resolve_base_model

    try:
        config = AutoConfig.from_pretrained(resolve_base_model(name))
    except (OSError, ValueError):
        return None
    return getattr(config, "max_position_embeddings", None)
