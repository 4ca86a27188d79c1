"""The train stage's settings: one dataclass. Flags fill it; what is left unset is derived.

``None`` means "derive it": :func:`derive` fills those fields from the model and the data (how
many records, how many tokens, the longest example) and says what it chose and why, so that a
run prints every value it used and its manifest stores them.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, NamedTuple

from bonsai.errors import BonsaiError
from bonsai.layouts import BASE, LAYOUTS

OVERLONG_POLICIES: tuple[str, ...] = ("truncate", "skip")
ON_OFF: tuple[str, ...] = ("on", "off")
"""The values of the switches --reading and --rehearsal."""
PRECISIONS: tuple[str, ...] = ("auto", "bf16", "fp32")


MAX_LENGTH_CAP = 1024
"""The longest ``max_length`` derived from the data (a longer one must be given)."""
LENGTH_STEP = 64
"""A derived ``max_length`` is rounded up to a multiple of this."""
MICRO_TOKENS = 2048
"""Tokens per forward pass when not derived otherwise (at least ``max_length``)."""
STEPS_PER_EPOCH = 20
"""The optimizer steps an epoch aims at when ``batch_tokens`` is derived."""
MAX_BATCH_TOKENS = 8192
"""The most tokens a derived optimizer step holds (a step stays a few seconds on a small CPU)."""
CONTINUED_EPOCHS = 2.0
"""The most epochs derived for a run that continues an adapter (the nursery stock or an earlier
round): its validation loss stops falling after about two, and a third costs half as much time
again (docs/training.md, "How long a keeper's round trains")."""


@dataclass
class TrainArgs:
    """What one ``bonsai train`` run does."""

    dataset: str
    """Name of the dataset in the garden whose records are trained on."""
    base_model: str | None = None
    """Model to fine-tune: 'embedded:gemma-3-270m', a Hugging Face id or a local folder
    (None: the garden's ``[student] base_model``; with ``from_run``: the parent's)."""
    layout: str | None = None
    """'alpaca', 'bonsai' or 'bonsai-given' (None: 'bonsai' when most records have a reasoning,
    otherwise 'alpaca'; with ``from_run``: the parent's)."""
    shard: int | None = None
    """Train only on this shard of the training records (``bonsai data split --shards``)."""
    epochs: float | None = None
    """Passes over the training records (None: derived from how many there are, and at most
    ``CONTINUED_EPOCHS`` for a run that continues an adapter)."""
    max_steps: int | None = None
    """Stop after this many optimizer steps (overrides ``epochs``)."""
    lr: float = 2e-4
    """Peak learning rate of the LoRA weights (cosine decay to 0 after a linear warmup)."""
    warmup: float = 0.05
    """Share of the steps spent warming the learning rate up from 0."""
    batch_tokens: int | None = None
    """Tokens per optimizer step (None: derived, aiming at about 20 steps per epoch)."""
    micro_tokens: int | None = None
    """Tokens per forward pass; a step accumulates gradients over several (None: derived)."""
    max_length: int | None = None
    """Longest example in tokens (None: the longest one in the data, at most
    ``MAX_LENGTH_CAP``, 1024)."""
    overlong: str = "truncate"
    """What to do with an example longer than ``max_length``: 'truncate' its target or 'skip' it."""
    eval_every: int | None = None
    """Validation loss every this many steps (None: about ten times a run)."""
    save_every: int | None = None
    """Checkpoint every this many steps (None: the same as ``eval_every``)."""
    lora_rank: int | None = None
    """LoRA rank (None: 8 below 1,000 training records, 16 below 20,000, else 32)."""
    lora_alpha: float | None = None
    """LoRA alpha (None: twice the rank)."""
    lora_targets: str = "all-linear"
    """Modules that get LoRA weights: 'all-linear' or a comma-separated list of module names."""
    lora_dropout: float = 0.0
    """Dropout on the LoRA input; 0 is faster, and a few epochs rarely need more."""
    weight_decay: float = 0.0
    """AdamW weight decay of the LoRA weights."""
    grad_clip: float = 1.0
    """Largest gradient norm; larger gradients are scaled down (0: no clipping)."""
    val_fraction: float = 0.1
    """Share of records for validation when the dataset has no validation split."""
    seed: int = 0
    """Seeds LoRA's initial weights, the data order and the split made for a run."""
    precision: str = "auto"
    """'bf16' (frozen weights in bfloat16, LoRA weights in float32), 'fp32', or 'auto' (bf16
    where the hardware computes in it natively)."""
    threads: int | None = None
    """CPU threads for torch (None: the cores this process may use, less those other processes
    keep busy)."""
    from_run: str | None = None
    """Continue this run's adapter (on another dataset or shard); it is recorded as the parent.
    'base' starts from the bare base model; None (the default) starts from the nursery stock
    when it was grown on the run's base model, else from the bare model."""
    notes: str = "auto"
    """Notes in the training prompts, as chat puts them there: 'auto' (retrieved from the
    garden's notes for half of the records, another record's notes for a quarter, none for the
    rest; nothing while the garden has no notes), 'off', or a JSON file of record id → notes."""
    reading: str = "off"
    """Reading records (:mod:`bonsai.train.reading`): 'on' (questions made from the garden's
    notes, one per note section, at most a quarter as many as the training records) or 'off'.
    Off by default: on the held-out sourdough garden they changed no answer to a facts question
    (docs/training.md)."""
    rehearsal: str = "off"
    """Rehearsal (:mod:`bonsai.nursery.rehearsal`): 'on' mixes some of the nursery's own records
    into a run that continues the stock (at most one for every two training records), so that
    the skills the stock learned from thousands of records do not fade; 'off' (the default) trains
    on the garden's records alone. Off by default: on the held-out gardens it did not answer
    better (docs/training.md). Runs that do not grow from the stock rehearse nothing."""
    dry_run: bool = False
    """Print rendered examples with their masks and token counts; train nothing, write nothing."""

    def __post_init__(self) -> None:
        if not self.dataset:
            raise BonsaiError("a dataset name is needed", field="dataset")
        if self.layout is not None and self.layout not in LAYOUTS:
            raise BonsaiError(
                f"unknown layout '{self.layout}'",
                field="layout",
                hint=f"choose one of: {', '.join(LAYOUTS)}",
            )
        if self.overlong not in OVERLONG_POLICIES:
            raise BonsaiError(
                f"unknown --overlong policy '{self.overlong}'",
                field="overlong",
                hint="'truncate' (cut the target) or 'skip' (leave the record out)",
            )
        if self.reading not in ON_OFF:
            raise BonsaiError(
                f"unknown --reading '{self.reading}'",
                field="reading",
                hint="'on' (reading records from the garden's notes) or 'off'",
            )
        if self.rehearsal not in ON_OFF:
            raise BonsaiError(
                f"unknown --rehearsal '{self.rehearsal}'",
                field="rehearsal",
                hint="'on' (some nursery records in a run that continues the stock) or 'off'",
            )
        if self.precision not in PRECISIONS:
            raise BonsaiError(
                f"unknown precision '{self.precision}'",
                field="precision",
                hint=f"choose one of: {', '.join(PRECISIONS)}",
            )
        whole = (
            "max_steps",
            "batch_tokens",
            "micro_tokens",
            "eval_every",
            "save_every",
            "lora_rank",
            "threads",
        )
        for name in whole:
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise BonsaiError(f"must be a whole number of 1 or more, not {value!r}", field=name)
        if self.max_length is not None and self.max_length < 8:
            raise BonsaiError(
                f"must be 8 tokens or more, not {self.max_length}", field="max_length"
            )
        if self.shard is not None and self.shard < 0:
            raise BonsaiError(f"must be 0 or more, not {self.shard}", field="shard")
        if self.epochs is not None and not self.epochs > 0:
            raise BonsaiError(f"must be more than 0, not {self.epochs}", field="epochs")
        if not 0 < self.lr < 1:
            raise BonsaiError(f"must be between 0 and 1, not {self.lr}", field="lr")
        if not 0 <= self.warmup < 1:
            raise BonsaiError(
                f"must be a fraction from 0 to below 1, not {self.warmup}", field="warmup"
            )
        if not 0 < self.val_fraction < 1:
            raise BonsaiError(
                f"must be a fraction between 0 and 1, not {self.val_fraction}", field="val_fraction"
            )
        if not 0 <= self.lora_dropout < 1:
            raise BonsaiError(
                f"must be from 0 to below 1, not {self.lora_dropout}", field="lora_dropout"
            )
        if self.lora_alpha is not None and self.lora_alpha <= 0:
            raise BonsaiError(f"must be more than 0, not {self.lora_alpha}", field="lora_alpha")
        if self.weight_decay < 0 or self.grad_clip < 0:
            raise BonsaiError("weight decay and gradient clip must be 0 or more")
        if not self.lora_targets.strip():
            raise BonsaiError("name the modules that get LoRA weights", field="lora_targets")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainArgs:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def from_flags(cls, dataset: str, **flags: Any) -> TrainArgs:
        """The dataclass defaults, overridden by every flag given (None means not given)."""
        known = {f.name for f in fields(cls)}
        given = {k: v for k, v in flags.items() if v is not None}
        unknown = set(given) - known
        if unknown:
            raise TypeError(f"unknown train settings: {sorted(unknown)}")
        return cls(dataset=dataset, **given)


@dataclass(frozen=True)
class DataStats:
    """What :func:`derive` needs to know about the data."""

    train_examples: int
    train_tokens: int
    longest: int
    """Longest example (prompt, target and special tokens), before any truncation."""


def available_cores() -> int:
    """CPU cores this process may run on (respects affinity masks and container limits)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS and Windows have no affinity masks
        return max(1, os.cpu_count() or 1)


class CpuSample(NamedTuple):
    """One reading of the machine's CPU time (/proc/stat, in clock ticks) and this process's."""

    total: float
    """All CPU time of the machine: the first eight fields of the ``cpu`` line."""
    idle: float
    """Idle and iowait time of the machine."""
    own: float
    """This process's user and system time, in seconds (``os.times()``)."""


def read_cpu_sample(stat_line: str | None = None) -> CpuSample | None:
    """The machine's CPU time now, from the ``cpu`` line of /proc/stat (or ``stat_line``, for a
    test); None where it cannot be read."""
    try:
        if stat_line is None:
            with open("/proc/stat", encoding="ascii") as stat:
                stat_line = stat.readline()
        fields = [float(v) for v in stat_line.split()[1:]]
    except (OSError, ValueError):
        return None
    if len(fields) < 4:
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    return CpuSample(sum(fields[:8]), idle, sum(os.times()[:2]))


def busy_between(first: CpuSample, second: CpuSample, cpus: int, ticks: float) -> float | None:
    """Cores that other processes kept busy between two samples: the machine's busy share of
    ``cpus`` less this process's own; None when no time passed."""
    total, idle = second.total - first.total, second.idle - first.idle
    if total <= 0:
        return None
    busy = (total - idle) / total * cpus
    own = (second.own - first.own) * ticks / total * cpus
    return max(0.0, busy - own)


def busy_cores(seconds: float = 0.3) -> float | None:
    """Cores that other processes keep busy right now: /proc/stat sampled over ``seconds``, less
    this process's own share. None where /proc/stat is missing (macOS, Windows).

    Measured now rather than read off the load average, which still counts, for a minute, a job
    that has just finished (a second training started right after a first would get one thread).
    """
    first = read_cpu_sample()
    if first is None:
        return None
    time.sleep(seconds)
    second = read_cpu_sample()
    if second is None:
        return None
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    return busy_between(first, second, os.cpu_count() or 1, ticks)


def available_threads() -> tuple[int, str]:
    """Threads for torch, and why: the cores this process may use, less those other processes
    keep busy. On a shared machine a thread that has to wait for a core stalls every other
    thread at each synchronisation, so fewer threads run faster."""
    cores = available_cores()
    busy = busy_cores()
    if busy is None:
        try:
            busy = os.getloadavg()[0]
        except (AttributeError, OSError):
            return cores, f"{cores} CPU cores"
    threads = max(1, min(cores, round(cores - busy)))
    if threads == cores:
        return threads, f"{cores} CPU cores"
    return threads, f"{cores} CPU cores, {busy:.1f} of them busy with other work"


def derive_max_length(args: TrainArgs, longest: int, model_max: int | None) -> tuple[int, str]:
    """``max_length`` and a note of where it came from."""
    cap = min(MAX_LENGTH_CAP, model_max or MAX_LENGTH_CAP)
    if args.max_length is not None:
        return args.max_length, "given"
    value = min(cap, max(LENGTH_STEP, math.ceil(longest / LENGTH_STEP) * LENGTH_STEP))
    return value, f"longest example {longest} tokens, rounded up to {LENGTH_STEP}, at most {cap}"


def derive(args: TrainArgs, stats: DataStats) -> tuple[TrainArgs, list[str]]:
    """``args`` with every derived field filled in, and one note per derived value."""
    notes: list[str] = []
    n = max(1, stats.train_examples)

    epochs = args.epochs
    if epochs is None and args.max_steps is None:
        epochs = 3.0 if n < 1_000 else 2.0 if n < 20_000 else 1.0
        why = f"{n:,} training examples"
        if args.from_run not in (None, BASE) and epochs > CONTINUED_EPOCHS:
            epochs = CONTINUED_EPOCHS
            why += f", continuing run {args.from_run}"
        notes.append(f"epochs {epochs:g} ({why})")

    batch_tokens = args.batch_tokens
    if batch_tokens is None:
        # About 20 optimizer steps per epoch: small personal datasets still get a real curve,
        # and big ones are capped so a step stays a few seconds long on a small CPU.
        target = stats.train_tokens // STEPS_PER_EPOCH
        batch_tokens = max(2 * (args.max_length or stats.longest), min(MAX_BATCH_TOKENS, target))
        batch_tokens = int(math.ceil(batch_tokens / 256) * 256)
        notes.append(
            f"batch_tokens {batch_tokens:,} (about {STEPS_PER_EPOCH} steps per epoch,"
            f" at most {MAX_BATCH_TOKENS:,})"
        )
    micro_tokens = args.micro_tokens
    if micro_tokens is None:
        micro_tokens = min(batch_tokens, max(MICRO_TOKENS, args.max_length or 0))
        notes.append(f"micro_tokens {micro_tokens:,} (tokens per forward pass)")
    if micro_tokens > batch_tokens:
        raise BonsaiError(
            f"micro_tokens ({micro_tokens}) is more than batch_tokens ({batch_tokens})",
            field="micro_tokens",
        )

    lora_rank = args.lora_rank
    if lora_rank is None:
        lora_rank = 8 if n < 1_000 else 16 if n < 20_000 else 32
        notes.append(f"lora_rank {lora_rank} ({n:,} training examples)")
    lora_alpha = args.lora_alpha
    if lora_alpha is None:
        lora_alpha = float(2 * lora_rank)
        notes.append(f"lora_alpha {lora_alpha:g} (twice the rank)")

    threads = args.threads
    if threads is None:
        threads, why = available_threads()
        notes.append(f"threads {threads} ({why})")

    resolved = replace(
        args,
        epochs=epochs,
        batch_tokens=batch_tokens,
        micro_tokens=micro_tokens,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        threads=threads,
    )
    return resolved, notes


def derive_schedule(args: TrainArgs, total_steps: int) -> tuple[TrainArgs, list[str]]:
    """Evaluation and checkpoint intervals derived from the run's length in steps."""
    notes: list[str] = []
    eval_every = args.eval_every
    if eval_every is None:
        eval_every = max(1, round(total_steps / 10))
        notes.append(f"eval_every {eval_every} (about ten evaluations in {total_steps} steps)")
    save_every = args.save_every
    if save_every is None:
        save_every = eval_every
        notes.append(f"save_every {save_every} (as eval_every)")
    return replace(args, eval_every=eval_every, save_every=save_every), notes
