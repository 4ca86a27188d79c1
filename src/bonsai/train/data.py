"""Data preparation, as a visible stage: records → rendered text → tokens with a loss mask → rows.

Nothing here needs the model, only its tokenizer, so ``bonsai train --dry-run`` shows exactly
what training will see (rendered examples, the masked part marked, token counts) in seconds.

* An :class:`Example` is one record: its token ids and how many of the first ones are prompt
  (no loss). BOS comes first when the tokenizer uses one; EOS ends the target.
* Rows are *packed*: examples are concatenated into one row of up to ``micro_tokens`` tokens,
  with position ids restarting at 0 for each, so attention never crosses from one example into
  the next and no compute is spent on padding.
* Only positions that predict a target token carry loss; :class:`Batch` lists exactly those, so
  the loss (and its 262k-column LM head) is computed for them alone.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bonsai.errors import BonsaiError
from bonsai.layouts import missing_fields, render, render_tasks
from bonsai.records import CATEGORIES, Record

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

UNKNOWN_CATEGORY = "unknown"
CATEGORY_NAMES: tuple[str, ...] = (*CATEGORIES, UNKNOWN_CATEGORY)
"""Index → category name, as :attr:`Batch.categories` uses them."""


@dataclass
class Example:
    """One record, tokenised: ``input_ids[:n_prompt]`` is prompt, the rest is target."""

    record_id: str
    category: str
    input_ids: list[int]
    n_prompt: int
    truncated: bool = False

    @property
    def n_target(self) -> int:
        return len(self.input_ids) - self.n_prompt


@dataclass
class DataReport:
    """What happened to the records on their way to examples."""

    records: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    """Reason → records left out."""
    truncated: int = 0
    longest: int = 0
    """Longest example before truncation, in tokens."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "skipped": dict(self.skipped),
            "truncated": self.truncated,
            "longest": self.longest,
        }


@dataclass
class SplitChoice:
    """Which records train and which validate, and where that choice came from."""

    train: list[Record]
    val: list[Record]
    made_here: bool
    """True when the dataset had no validation split and this run made one (not stored)."""


# -- split --------------------------------------------------------------------------------------


def choose_split(
    train: list[Record], val: list[Record], unsplit: list[Record], *, fraction: float, seed: int
) -> SplitChoice:
    """Use the dataset's split; without a validation part, make one for this run only.

    The split made here is the one ``bonsai data split --val FRACTION --seed SEED`` would store
    (stratified by category and language, at least one validation record per category of two or
    more), but it is not written to the database: the run's manifest lists the validation ids.
    Records with no split at all train when the dataset has a validation part.
    """
    if val:
        return SplitChoice(train + unsplit, val, made_here=False)
    from bonsai.curate.split import SplitArgs, assign_splits

    pool = train + unsplit
    if len(pool) < 2:
        raise BonsaiError(
            f"only {len(pool)} record(s) to train on: at least 2 are needed (one to validate)"
        )
    assigned = assign_splits(pool, SplitArgs(val=fraction, seed=seed)).records
    val_ids = {r.id for r in assigned if r.split == "val"}
    if not val_ids:  # e.g. every category has a single record: still validate on one
        val_ids = {sorted(pool, key=lambda r: r.id)[0].id}
    return SplitChoice(
        [r for r in pool if r.id not in val_ids],
        [r for r in pool if r.id in val_ids],
        made_here=True,
    )


def split_by_ids(records: list[Record], val_ids: Sequence[str]) -> SplitChoice:
    """The split a run made for itself, restored from the validation ids in its manifest."""
    wanted = set(val_ids)
    return SplitChoice(
        [r for r in records if r.id not in wanted],
        [r for r in records if r.id in wanted],
        made_here=True,
    )


# -- tokenising ---------------------------------------------------------------------------------


def special_ids(tokenizer: PreTrainedTokenizerBase) -> tuple[list[int], int]:
    """(ids to put before a prompt, the EOS id). BOS only if the tokenizer adds one itself."""
    eos = tokenizer.eos_token_id
    if eos is None:
        raise BonsaiError(
            "the tokenizer has no end-of-sequence token, so the model could not learn to stop",
            hint="use a model whose tokenizer defines eos_token",
        )
    bos = tokenizer.bos_token_id
    probe = tokenizer("a")["input_ids"]
    prefix = [bos] if bos is not None and probe and probe[0] == bos else []
    return prefix, int(eos)


def tokenise(
    records: Sequence[Record],
    tokenizer: PreTrainedTokenizerBase,
    layout: str,
    *,
    report: DataReport,
    notes: Mapping[str, str] | None = None,
    all_tasks: bool = True,
) -> list[Example]:
    """Examples of ``records`` in ``layout``, at full length. Records the layout cannot render
    (no reasoning for 'bonsai', say) are skipped and counted in ``report``.

    ``notes`` maps a record id to the notes its prompt carries (retrieval-aware training).
    With ``all_tasks`` a record gives every example its layout trains on (the reasoning task of
    ``bonsai-multitask`` too); without, only the answer (validation measures the answer).
    Prompt and target are tokenised separately, as at inference: the prompt is encoded alone and
    the model continues it.
    """
    prefix, eos = special_ids(tokenizer)
    notes = notes or {}
    usable: list[Record] = []
    for record in records:
        report.records += 1
        missing = missing_fields(layout, record)
        if missing:
            report.skipped[f"no {missing[0]}"] += 1
        else:
            usable.append(record)
    if not usable:
        return []
    owners: list[Record] = []
    rendered = []
    for record in usable:
        given = notes.get(record.id, "")
        tasks = (
            render_tasks(layout, record, given) if all_tasks else [render(layout, record, given)]
        )
        owners += [record] * len(tasks)
        rendered += tasks
    prompts = tokenizer([x.prompt for x in rendered], add_special_tokens=False)["input_ids"]
    targets = tokenizer([x.target for x in rendered], add_special_tokens=False)["input_ids"]
    examples = []
    for record, prompt, target in zip(owners, prompts, targets, strict=True):
        ids = prefix + list(prompt) + list(target) + [eos]
        report.longest = max(report.longest, len(ids))
        category = record.category if record.category in CATEGORIES else UNKNOWN_CATEGORY
        examples.append(Example(record.id, category, ids, len(prefix) + len(prompt)))
    return examples


def fit_length(
    examples: Sequence[Example], max_length: int, overlong: str, report: DataReport
) -> list[Example]:
    """Examples no longer than ``max_length``: a longer one is truncated (the end of its target
    goes, with the EOS) or skipped, as ``overlong`` says; either way it is counted. An example
    whose prompt alone is too long has nothing left to learn and is always skipped."""
    kept = []
    for ex in examples:
        if len(ex.input_ids) <= max_length:
            kept.append(ex)
        elif overlong == "skip":
            report.skipped[f"longer than {max_length} tokens"] += 1
        elif ex.n_prompt >= max_length:
            report.skipped[f"prompt alone longer than {max_length} tokens"] += 1
        else:
            report.truncated += 1
            kept.append(
                Example(ex.record_id, ex.category, ex.input_ids[:max_length], ex.n_prompt, True)
            )
    return kept


def data_hash(layout: str, train: Sequence[Example], val: Sequence[Example]) -> str:
    """Hash of exactly what training sees: layout, token ids, masks and the split."""
    digest = hashlib.sha256(layout.encode())
    for part, examples in (("train", train), ("val", val)):
        digest.update(part.encode())
        for ex in examples:
            digest.update(f"{ex.record_id}\x00{ex.n_prompt}\x00".encode())
            digest.update(",".join(map(str, ex.input_ids)).encode())
    return digest.hexdigest()[:16]


# -- packing ------------------------------------------------------------------------------------


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The order of the training examples in ``epoch``: a shuffle that depends only on the seed
    and the epoch, so a resumed run sees exactly the data it would have seen."""
    order = list(range(n))
    random.Random(f"bonsai-train\x00{seed}\x00{epoch}").shuffle(order)
    return order


def pack(order: Sequence[int], examples: Sequence[Example], micro_tokens: int) -> list[list[int]]:
    """Rows of example indices, in ``order``, each row at most ``micro_tokens`` tokens long.

    A row is closed when the next example does not fit: rows are not padded, so nothing is spent
    on padding, and no example is ever split between rows.
    """
    rows: list[list[int]] = []
    row: list[int] = []
    size = 0
    for i in order:
        length = len(examples[i].input_ids)
        if row and size + length > micro_tokens:
            rows.append(row)
            row, size = [], 0
        row.append(i)
        size += length
    if row:
        rows.append(row)
    return rows


def steps_of(rows: list[list[int]], rows_per_step: int) -> list[list[list[int]]]:
    """Rows grouped into optimizer steps (the last step of an epoch may be smaller)."""
    return [rows[i : i + rows_per_step] for i in range(0, len(rows), rows_per_step)]


@dataclass
class Batch:
    """One packed row as tensors, and which positions carry loss."""

    input_ids: torch.Tensor
    """(1, T) token ids of the examples, one after another."""
    position_ids: torch.Tensor
    """(1, T) positions, restarting at 0 for each example (this is what keeps them apart)."""
    loss_positions: torch.Tensor
    """(n,) indices into the row of the positions whose next token is a target token."""
    targets: torch.Tensor
    """(n,) the target token each of those positions must predict."""
    categories: torch.Tensor
    """(n,) index into :data:`CATEGORY_NAMES` of each target token's record."""
    tokens: int
    """T: tokens in the row."""
    segments: list[tuple[int, int]] = field(default_factory=list)
    """(start, end) of each example in the row, for attention that skips the masked blocks."""

    @property
    def loss_tokens(self) -> int:
        return int(self.targets.numel())

    def to(self, device: Any) -> Batch:
        return Batch(
            self.input_ids.to(device),
            self.position_ids.to(device),
            self.loss_positions.to(device),
            self.targets.to(device),
            self.categories.to(device),
            self.tokens,
            self.segments,
        )


def collate(examples: Sequence[Example]) -> Batch:
    """Pack ``examples`` into one :class:`Batch`."""
    import torch

    ids: list[int] = []
    positions: list[int] = []
    loss_positions: list[int] = []
    targets: list[int] = []
    categories: list[int] = []
    segments: list[tuple[int, int]] = []
    for ex in examples:
        start = len(ids)
        segments.append((start, start + len(ex.input_ids)))
        ids.extend(ex.input_ids)
        positions.extend(range(len(ex.input_ids)))
        # Position t predicts token t+1, so target tokens n_prompt.. come from n_prompt-1..
        first = max(ex.n_prompt, 1)
        loss_positions.extend(range(start + first - 1, start + len(ex.input_ids) - 1))
        targets.extend(ex.input_ids[first:])
        categories.extend([CATEGORY_NAMES.index(ex.category)] * (len(ex.input_ids) - first))
    return Batch(
        torch.tensor([ids], dtype=torch.long),
        torch.tensor([positions], dtype=torch.long),
        torch.tensor(loss_positions, dtype=torch.long),
        torch.tensor(targets, dtype=torch.long),
        torch.tensor(categories, dtype=torch.long),
        len(ids),
        segments,
    )


# -- dry run ------------------------------------------------------------------------------------


def render_masked(example: Example, tokenizer: PreTrainedTokenizerBase) -> list[tuple[bool, str]]:
    """The example as (trained, line) pairs: special tokens shown, every line marked as masked
    (prompt, no loss) or trained (target, loss). A line is split where the mask changes."""
    parts = [
        (False, str(tokenizer.decode(example.input_ids[: example.n_prompt]))),
        (True, str(tokenizer.decode(example.input_ids[example.n_prompt :]))),
    ]
    lines: list[tuple[bool, str]] = []
    for trained, text in parts:
        if not text:
            continue
        pieces = text.split("\n")
        if text.endswith("\n"):
            pieces = pieces[:-1]
        lines.extend((trained, piece) for piece in pieces)
    return lines
