"""Grow the nursery stock: a starter adapter for the embedded student, from open data.

``bonsai nursery build --data DIR`` (DIR: the shared data folder, see :mod:`.sources`):

1. **Records.** Japanese Dolly records are shuffled and dealt into a validation set and two
   shards, as the seeds' author trained Dolly in shards one after another. Shard A also takes
   the English Dolly records, shard B the question-to-question and classification records
   written for the project; both take translation records made from sentence pairs (J→E and
   E→J). Shard C is for reading: the Japanese Dolly records left over that come with a text and
   answer from it briefly, with new translation records and the q2q and label records again.
   Every record is in the BONSAI record form, with one of the seven categories.
2. **Notes, as chat gives them** (retrieval-aware training, cf. RAFT). A Dolly record that
   comes with a reference text gets it as the gold note among distractor notes (other records'
   texts), or keeps it as the given input (reading a text given with the question), with or
   without distractors; a record without one gets distractors or nothing.
3. **Reasoning.** A quarter of the records get a composed reasoning (the template teacher), so
   the student learns the reasoning task of the ``bonsai-multitask`` layout.
4. **Train** shard A, then shard B continuing A's adapter, then (``--shards 3``) shard C
   continuing B's (each a normal run in a work garden, so a killed build resumes where it
   stopped), and report held-out loss after each. ``--continue-stock`` starts from the shipped
   stock instead and trains only the shards it was not grown on.
5. **Ship** the last run's adapter with its manifest, curves and the data licence, and
   ``rehearsal.jsonl``: short records of the shards that a keeper's round trains on again
   (:mod:`.rehearsal`). ``--rehearsal-only`` writes that file alone, for the stock already shipped.

The work garden keeps everything: ``bonsai runs --garden WORK`` lists the runs.
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from rich.console import Console

from bonsai.errors import BonsaiError
from bonsai.garden import Garden
from bonsai.layouts import DEFAULT_REASONING_LAYOUT, cut_at_sentence, format_notes
from bonsai.nursery import rehearsal, sources
from bonsai.records import Record
from bonsai.student.embedded import EMBEDDED_MODEL

DATASET = "nursery"
NOTES_FILE = "notes.json"
SHARD_NAMES = ("A", "B", "C")
READING_OUTPUT_LIMIT = 400
"""Shard C's reading records answer in at most this many characters (extraction, not essays)."""


@dataclass
class NurseryConfig:
    """What one nursery build does; the defaults fit about two hours on a 2-core CPU."""

    data_dir: Path
    """The shared data folder (``dolly-ja/``, ``dolly/``, ``enja-pairs/``)."""
    work_dir: Path
    """The work garden: records, notes, runs and checkpoints (a killed build resumes here)."""
    out_dir: Path | None = None
    """Where the stock is written (None: the stock folder inside the package)."""
    dolly_ja_per_shard: int = 5000
    """Japanese Dolly records in shards A and B (shard C reads from those left over)."""
    pairs_per_shard: int = 1200
    """Translation records made from sentence pairs in shards A and B (half each way; shard C
    takes half as many)."""
    val_records: int = 300
    """Japanese Dolly records held out for validation (plus a share of the others)."""
    val_pairs: int = 200
    """Translation records held out for validation."""
    reasoning_share: float = 0.25
    """Share of records that get a composed reasoning (the second task)."""
    layout: str = DEFAULT_REASONING_LAYOUT
    max_length: int = 512
    lora_rank: int = 16
    epochs: float = 1.0
    lr: float = 3e-4
    micro_tokens: int | None = None
    """Tokens per forward pass (None: derived as for any run; a GPU takes far more)."""
    batch_tokens: int | None = None
    seed: int = 0
    max_steps: int | None = None
    """Stop each shard after this many steps (a shorter build)."""
    eval_every: int | None = None
    """Validation loss every this many steps (None: derived, about ten times a shard)."""
    base_model: str = EMBEDDED_MODEL
    shards: int = 2
    """How many of the shards to train, A first (1: shard A only, a shorter build; 3: shard C,
    reading, after B)."""
    only_records: bool = False
    """Write the records and notes and stop (no training)."""
    only_rehearsal: bool = False
    """Deal the records and write the stock's rehearsal.jsonl alone (no training)."""
    continue_stock: bool = False
    """Start from the stock the package ships and train only the shards it was not grown on
    (its manifest's lineage says which), instead of growing every shard from the bare model."""

    def __post_init__(self) -> None:
        if not 1 <= self.shards <= len(SHARD_NAMES):
            raise BonsaiError(f"--shards must be between 1 and {len(SHARD_NAMES)}", field="shards")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {k: str(v) if isinstance(v, Path) else v for k, v in data.items()}


@dataclass
class Deal:
    """The records of a build: validation and shards, and the notes of each prompt."""

    val: list[Record] = field(default_factory=list)
    shards: list[list[Record]] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)

    def counts(self) -> dict[str, dict[str, int]]:
        parts = {
            "val": self.val,
            **{f"shard {SHARD_NAMES[i]}": s for i, s in enumerate(self.shards)},
        }
        table: dict[str, dict[str, int]] = {}
        for name, records in parts.items():
            row: dict[str, int] = {}
            for record in records:
                row[record.category or "?"] = row.get(record.category or "?", 0) + 1
            table[name] = dict(sorted(row.items()))
        return table


def with_notes(
    items: Sequence[sources.Source], *, seed: int, gold_limit: int = 700, note_limit: int = 300
) -> tuple[list[Record], dict[str, str]]:
    """Records with their reference texts placed as chat would place notes (module docstring).

    Returns the records (a reference text not used as a note stays the record's input) and the
    notes text of each record that has notes.
    """
    rng = random.Random(seed)
    pool = [item.context for item in items if item.context]
    records: list[Record] = []
    notes: dict[str, str] = {}

    def distractors(n: int, avoid: str) -> list[tuple[str, str]]:
        chosen: list[tuple[str, str]] = []
        while pool and len(chosen) < n:
            text = rng.choice(pool)
            if text != avoid:
                chosen.append(("", cut_at_sentence(text, note_limit)))
        return chosen

    for item in items:
        record, context = item.record, item.context
        draw = rng.random()
        passages: list[tuple[str, str]] = []
        if context and draw < 0.5 and len(context) <= gold_limit:
            passages = [("", context), *distractors(rng.randint(0, 2), context)]
            rng.shuffle(passages)
        elif context:
            record = replace(record, input=context)
            if draw >= 0.75:
                passages = distractors(rng.randint(1, 2), context)
        elif draw >= 0.6:
            passages = distractors(rng.randint(1, 2), "")
        records.append(record)
        if passages:
            notes[record.id] = format_notes(passages)
    return records, notes


def with_reasoning(records: list[Record], share: float, seed: int) -> list[Record]:
    """A composed reasoning (in English, "You should …") for ``share`` of the records."""
    from bonsai.teach.compose import compose_reasoning

    rng = random.Random(seed)
    return [
        replace(r, reasoning=compose_reasoning(r, "en")) if rng.random() < share else r
        for r in records
    ]


def deal(config: NurseryConfig, console: Console | None = None) -> Deal:
    """Read the sources and deal them into validation and shards (deterministic per seed)."""
    data = config.data_dir
    rng = random.Random(config.seed)
    ja = sources.read_dolly(data / sources.DOLLY_JA, language="ja", prefix="dolly-ja")
    en = sources.read_dolly(data / sources.DOLLY_EN, language="en", prefix="dolly-en")
    n_shards = 2  # shards A and B deal Dolly and pairs evenly; shard C takes what is left
    wanted = config.val_records + n_shards * config.dolly_ja_per_shard
    if len(ja) < wanted:
        raise BonsaiError(
            f"{len(ja)} Japanese Dolly records, {wanted} wanted",
            file=str(data / sources.DOLLY_JA),
            hint="lower --per-shard",
        )
    rng.shuffle(ja)
    rng.shuffle(en)
    pairs = sources.read_pairs(
        data / sources.PAIRS,
        n_shards * config.pairs_per_shard + config.pairs_per_shard // 2 + config.val_pairs,
        config.seed,
    )
    translation = sources.translation_records(pairs, config.seed)
    q2q = sources.project_records("question_to_question")
    labels = sources.project_records("classification")
    rng.shuffle(q2q)
    rng.shuffle(labels)

    def held(items: list[Any], share: float = 0.1) -> tuple[list[Any], list[Any]]:
        n = max(1, round(len(items) * share))
        return items[:n], items[n:]

    val_en, en = held(en)
    val_q2q, q2q = held(q2q)
    val_labels, labels = held(labels)
    val_tr, translation = translation[: config.val_pairs], translation[config.val_pairs :]
    val = ja[: config.val_records] + val_en + val_q2q + val_labels + val_tr
    per, ppair = config.dolly_ja_per_shard, config.pairs_per_shard
    start = config.val_records
    shard_a = ja[start : start + per] + en + translation[:ppair]
    shard_b = ja[start + per : start + 2 * per] + translation[ppair : 2 * ppair] + q2q + labels
    # q2q and labels are few: shard A sees half of them too, so both shards teach every category.
    shard_a += q2q[: len(q2q) // 2] + labels[: len(labels) // 2]
    # Shard C, reading: the Japanese Dolly records neither shard took that come with a text to
    # read and answer from it briefly, with new translation records and the q2q and label
    # records again, so that reading is trained without the other categories fading.
    reading = [
        item
        for item in ja[start + 2 * per :]
        if item.context
        and item.record.category == "closed_qa"
        and len(item.record.output) <= READING_OUTPUT_LIMIT
    ]
    shard_c = reading + translation[2 * ppair : 2 * ppair + ppair // 2] + q2q + labels

    result = Deal()
    for part_no, part in enumerate([val, shard_a, shard_b, shard_c]):
        records, notes = with_notes(part, seed=config.seed + part_no)
        records = with_reasoning(records, config.reasoning_share, config.seed + part_no)
        result.notes.update(notes)
        if part_no == 0:
            result.val = [replace(r, split="val") for r in records]
        else:
            # Shard A takes some q2q/label records of shard B's: give those their own ids.
            seen = {r.id for s in result.shards for r in s}
            records = [
                replace(r, id=f"{r.id}-{SHARD_NAMES[part_no - 1]}" if r.id in seen else r.id)
                for r in records
            ]
            for old, new in zip(part, records, strict=True):
                if old.record.id != new.id and old.record.id in notes:
                    result.notes[new.id] = notes[old.record.id]
            result.shards.append([replace(r, split="train", shard=part_no - 1) for r in records])
    if console:
        for name, row in result.counts().items():
            total = sum(row.values())
            console.print(
                f"  {name}: {total} records ({', '.join(f'{k} {v}' for k, v in row.items())})"
            )
    return result


def rehearsal_lines(result: Deal, config: NurseryConfig) -> list[dict]:
    """The rehearsal records the stock ships: short records of the shards it trained on."""
    trained = [record for shard in result.shards[: config.shards] for record in shard]
    return rehearsal.choose(trained, result.notes, seed=config.seed)


def _open_work_garden(config: NurseryConfig) -> Garden:
    if (config.work_dir / "bonsai.toml").is_file():
        return Garden(config.work_dir.resolve())
    return Garden.init(config.work_dir, name="nursery")


def write_records(garden: Garden, result: Deal) -> Path:
    """The dealt records as the work garden's dataset, and the notes file; idempotent. A work
    garden written before a shard existed (shard C) gets that shard's records added."""
    from bonsai.store import Change, RecordStore

    store = RecordStore(garden.db)
    notes_path = garden.root / NOTES_FILE
    held = {r.id for r in store.records(DATASET)} if DATASET in store.dataset_names() else set()
    records = [*result.val, *(r for shard in result.shards for r in shard)]
    missing = [r for r in records if r.id not in held]
    if missing:
        store.apply(
            DATASET,
            [Change(None, r) for r in missing],
            kind="import",
            description="nursery records from the shared data",
        )
    from bonsai.util.atomic import atomic_write_json

    atomic_write_json(notes_path, result.notes)
    return notes_path


def _shard_run(garden: Garden, shard: int) -> Any:
    from bonsai import runs

    found = [r for r in runs.list_runs(garden, dataset=DATASET) if r.manifest.shard == shard]
    return found[-1] if found else None


def build(config: NurseryConfig, console: Console | None = None) -> Path | None:
    """Deal, write, train shard A then B (resuming what a killed build left), ship the stock."""
    from bonsai.train.args import TrainArgs
    from bonsai.train.loop import resume, train

    console = console or Console(stderr=True)
    if config.only_rehearsal:
        from bonsai.nursery import STOCK_DIR

        console.print("Dealing the records:")
        result = deal(config, console)
        path = (config.out_dir or STOCK_DIR).resolve() / rehearsal.REHEARSAL_FILE
        rehearsal.write(path, rehearsal_lines(result, config))
        return path.parent
    garden = _open_work_garden(config)
    console.print(f"Nursery work garden: {garden.root}")
    console.print("Dealing the records:")
    result = deal(config, console)
    notes_path = write_records(garden, result)
    if config.only_records:
        return None
    parent: str | None = None
    first = 0
    if config.continue_stock:
        parent, first = _continued_stock(garden, config, console)
    for shard, name in enumerate(SHARD_NAMES[: config.shards]):
        if shard < first:
            continue
        run = _shard_run(garden, shard)
        if run is not None and run.status == "finished":
            console.print(f"Shard {name}: run {run.id} already finished.")
        elif run is not None:
            console.print(f"Shard {name}: resuming run {run.id}.")
            run = resume(garden, dataset=DATASET, console=console)
        else:
            console.print(f"Shard {name}: training.")
            args = TrainArgs(
                dataset=DATASET,
                base_model=None if parent else config.base_model,
                layout=config.layout,
                shard=shard,
                epochs=None if config.max_steps else config.epochs,
                max_steps=config.max_steps,
                eval_every=config.eval_every,
                lr=config.lr,
                max_length=config.max_length,
                lora_rank=None if parent else config.lora_rank,
                micro_tokens=config.micro_tokens,
                batch_tokens=config.batch_tokens,
                seed=config.seed,
                from_run=parent or "base",
                notes=str(notes_path),
            )
            run = train(garden, args, console=console)
        if run is None or run.status != "finished":
            raise BonsaiError(
                f"shard {name} did not finish",
                hint="run the same command again to resume where it stopped",
            )
        parent = run.id
    assert parent is not None
    return ship(garden, parent, config, result)


def _continued_stock(garden: Garden, config: NurseryConfig, console: Console) -> tuple[str, int]:
    """The shipped stock as a run of the work garden, and the first shard it was not grown on."""
    from bonsai.nursery import STOCK_DIR, install_stock, stock_manifest

    manifest = stock_manifest(STOCK_DIR)
    if manifest is None:
        raise BonsaiError("--continue-stock: no nursery stock is shipped with this installation")
    if manifest["base_model"]["name"] != config.base_model:
        raise BonsaiError(
            f"--continue-stock: the shipped stock was grown on {manifest['base_model']['name']}",
            field="base_model",
        )
    grown = [step["shard"] for step in manifest.get("nursery", {}).get("lineage", [])]
    first = len(grown)
    if first >= config.shards:
        raise BonsaiError(
            f"--continue-stock: the shipped stock already holds shards {', '.join(grown)}",
            field="shards",
            hint=f"--shards {first + 1} trains shard {SHARD_NAMES[first]} on top of it"
            if first < len(SHARD_NAMES)
            else None,
        )
    run_id = install_stock(garden, STOCK_DIR)
    console.print(f"Continuing the shipped stock (shards {', '.join(grown)}): run {run_id}.")
    return run_id, first


def ship(garden: Garden, run_id: str, config: NurseryConfig, result: Deal) -> Path:
    """Copy the run's adapter, manifest, metrics and curves into the stock folder, with the
    lineage (every shard's held-out loss) and the data licence."""
    from bonsai import runs
    from bonsai.nursery import NOTICE, STOCK_DIR
    from bonsai.util.atomic import atomic_dir

    run = runs.load_run(garden, run_id)
    lineage = []
    current: Any = run
    while current is not None:
        earlier = current.manifest.extra.get("nursery", {}).get("lineage")
        if earlier:  # a shipped stock the build continued: its own shards, as it recorded them
            lineage.extend(reversed(earlier))
            break
        lineage.append(
            {
                "run": current.id,
                "shard": SHARD_NAMES[current.manifest.shard or 0],
                "summary": current.manifest.summary,
            }
        )
        parent = current.manifest.parent
        current = runs.load_run(garden, parent) if parent else None
    lineage.reverse()
    target = (config.out_dir or STOCK_DIR).resolve()
    with atomic_dir(target) as tmp:
        shutil.copytree(run.final_adapter(), tmp / "adapter")
        for name in (runs.METRICS, "loss.png", "loss_by_category.png"):
            if (run.dir / name).is_file():
                shutil.copy2(run.dir / name, tmp / name)
        manifest = run.manifest.to_dict()
        manifest.pop("pid", None)
        manifest.pop("host", None)
        manifest["parent"] = None
        # Where the base model was cached on the building machine means nothing elsewhere.
        manifest["base_model"] = {"name": run.manifest.base_model_name}
        manifest["nursery"] = {
            "config": config.to_dict(),
            "records": result.counts(),
            "lineage": lineage,
            "sources": [
                "dolly-ja/databricks-dolly-15k-ja.jsonl (CC BY-SA 3.0)",
                "dolly/dolly-sample.jsonl (CC BY-SA 3.0)",
                "enja-pairs/train.en, train.ja",
                "bonsai/nursery/data (question_to_question, classification, phrasings)",
            ],
        }
        (tmp / runs.MANIFEST).write_text(
            json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        (tmp / "NOTICE.md").write_text(NOTICE, encoding="utf-8")
        rehearsal.write(tmp / rehearsal.REHEARSAL_FILE, rehearsal_lines(result, config))
    return target
