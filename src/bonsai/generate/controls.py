"""What keeps a small model from repeating itself, and how the next token is chosen.

The base student falls into loops ("富士山は、日本で一番高い山です。" over and over), so three
controls work together, all on the answer's tokens only (never the prompt, whose retrieved notes
an answer should be free to quote):

- a repetition penalty on every token already generated, except a digit that continues a number:
  numbers are written one digit a token, and "22 cm", "100 g" or "2024" repeat a digit without
  the answer repeating itself (penalised, the student wrote "20 cm" for a note's 22 cm). A
  number's first digit is penalised as any token is, so one number does not become every number;
- a ban on repeating any n-gram of the answer;
- a loop detector that ends the answer once its tail is one block repeated back to back, and
  cuts the repeats off.

These are plain functions over a logits row and a token list, so every engine shares them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bonsai.generate.args import GenerateArgs

if TYPE_CHECKING:
    import torch

SAMPLE_WINDOW = 16.0
"""Sampling ignores tokens this many temperatures below the best (probability < e^-16 ≈ 1e-7
of the best token's): it changes no draw in practice and spares ranking the whole vocabulary."""
LOOP_MIN_REPEATS = 3
"""Copies of a block, back to back, that make a loop (two can be a deliberate parallel)."""


@dataclass
class AnswerState:
    """The answer so far, with the indexes the controls need, updated one token at a time."""

    ngram_size: int
    digits: frozenset[int] = frozenset()
    """The engine's digit tokens (:func:`digit_tokens`)."""
    tokens: list[int] = field(default_factory=list)
    seen: dict[int, None] = field(default_factory=dict)
    """Distinct tokens in order of first use (a dict keeps insertion order)."""
    followers: dict[tuple[int, ...], set[int]] = field(default_factory=dict)
    """For each (n-1)-gram of the answer, the tokens that followed it."""

    def add(self, token: int) -> None:
        self.tokens.append(token)
        self.seen[token] = None
        n = self.ngram_size
        if n >= 1 and len(self.tokens) >= n:
            prefix = tuple(self.tokens[len(self.tokens) - n : -1])
            self.followers.setdefault(prefix, set()).add(token)

    def penalised(self) -> list[int]:
        """Tokens the repetition penalty lowers now: every token used, but no digit while the
        answer is in the middle of a number."""
        if self.tokens and self.tokens[-1] in self.digits:
            return [token for token in self.seen if token not in self.digits]
        return list(self.seen)

    def banned(self) -> set[int]:
        """Tokens that would complete an n-gram the answer already has."""
        n = self.ngram_size
        if n < 1 or len(self.tokens) < n - 1:
            return set()
        prefix = tuple(self.tokens[len(self.tokens) - (n - 1) :]) if n > 1 else ()
        return self.followers.get(prefix, set())


def digit_tokens(pieces: Iterable[tuple[int, str]]) -> frozenset[int]:
    """The ids among ``(id, text)`` pieces whose text is digits only ("7", "▁7", "７")."""
    return frozenset(i for i, piece in pieces if piece.strip(" ▁Ġ").isdigit())


CONTEXT_PLAUSIBILITY = 0.1
"""Context-aware decoding weighs only the tokens at least this likely, relative to the best,
with the context (the plausibility bound of contrastive decoding, Li et al., 2023): a token the
model finds unlikely either way is never lifted by the difference."""


def weigh_context(with_context: torch.Tensor, without: torch.Tensor, weight: float) -> torch.Tensor:
    """Context-aware decoding's scores from two float32 (vocab,) logit rows: ``(1 + weight) ·
    with_context − weight · without`` where the token is plausible with the context, −inf
    elsewhere. Softmax of these is p(token | context)^(1+w) / p(token | no context)^w."""
    import torch

    log_probs = torch.log_softmax(with_context, dim=-1)
    plausible = log_probs >= log_probs.max() + math.log(CONTEXT_PLAUSIBILITY)
    scores = (1.0 + weight) * with_context - weight * without
    return scores.masked_fill(~plausible, -math.inf)


def apply_controls(logits: torch.Tensor, state: AnswerState, args: GenerateArgs) -> torch.Tensor:
    """Penalise repeats and forbid repeated n-grams, in place on a float32 (vocab,) row."""
    import torch

    repeated = state.penalised() if args.repetition_penalty != 1.0 else []
    if repeated:
        ids = torch.tensor(repeated, dtype=torch.long)
        scores = logits.index_select(0, ids)
        lowered = torch.where(
            scores > 0, scores / args.repetition_penalty, scores * args.repetition_penalty
        )
        logits.index_copy_(0, ids, lowered)
    banned = state.banned()
    if banned:
        logits.index_fill_(0, torch.tensor(list(banned), dtype=torch.long), -math.inf)
    return logits


def choose_token(
    logits: torch.Tensor, args: GenerateArgs, generator: torch.Generator | None = None
) -> int:
    """Greedy, or a sample with temperature, top-k and top-p from a (vocab,) float32 row."""
    import torch

    if args.greedy:
        return int(torch.argmax(logits))
    # Ranking a 262k vocabulary costs milliseconds per token. Tokens more than SAMPLE_WINDOW
    # temperatures below the best have probability < e^-SAMPLE_WINDOW of it: leave them out first.
    near = (logits >= logits.max() - SAMPLE_WINDOW * args.temperature).nonzero().squeeze(1)
    pool = logits.index_select(0, near)
    k = args.top_k if 0 < args.top_k < pool.shape[0] else pool.shape[0]
    values, order = torch.topk(pool, k)
    indices = near.index_select(0, order)
    probs = torch.softmax(values / args.temperature, dim=-1)
    if args.top_p < 1.0:
        cumulative = torch.cumsum(probs, dim=-1)
        # Keep the smallest prefix whose mass reaches top_p (always at least the best token).
        keep = (cumulative - probs) < args.top_p
        probs = torch.where(keep, probs, torch.zeros_like(probs))
    if not torch.isfinite(probs).all() or float(probs.sum()) <= 0.0:
        return int(indices[0])
    pick = torch.multinomial(probs, 1, generator=generator)
    return int(indices[pick])


class LoopWatch:
    """Finds the moment an answer's tail becomes one block repeated back to back.

    For every period p up to ``max_period`` it keeps how many of the last tokens equal the token
    p before them (O(max_period) per token). A loop of period p: that run covers at least
    :data:`LOOP_MIN_REPEATS` copies of the block and ``min_span`` tokens. Cutting it keeps what
    came before the repeats and the block once. The longest run is also what a loop could still
    remove, so streaming holds that many tokens back until it is decided.
    """

    def __init__(self, max_period: int, min_span: int) -> None:
        self.tokens: list[int] = []
        self.runs = [0] * (max_period + 1)
        self.needed = [0] + [
            max(LOOP_MIN_REPEATS, -(-min_span // p)) * p - p for p in range(1, max_period + 1)
        ]
        """For period p, the run that makes a loop: all copies but the first."""

    def add(self, token: int) -> int | None:
        """Take the next token; return the length to cut the answer to if it now loops."""
        self.tokens.append(token)
        n = len(self.tokens)
        cut = None
        for period in range(1, len(self.runs)):
            if n > period and self.tokens[-1 - period] == token:
                self.runs[period] += 1
                if cut is None and self.runs[period] >= self.needed[period]:
                    cut = n - self.runs[period]
            else:
                self.runs[period] = 0
        return cut

    def suspect(self) -> int:
        """Trailing tokens that repeat an earlier block: what a loop found later would remove."""
        return max(self.runs)


def first_stop(text: str, stops: tuple[str, ...], search_from: int = 0) -> int | None:
    """Index of the earliest stop sequence in ``text`` at or after ``search_from``, or None."""
    best: int | None = None
    for stop in stops:
        at = text.find(stop, max(0, search_from - len(stop) + 1))
        if at != -1 and (best is None or at < best):
            best = at
    return best


def held_back(text: str, stops: tuple[str, ...]) -> int:
    """How many trailing characters to hold back while streaming: they may begin a stop sequence,
    or be an incomplete character the tokenizer has not finished (U+FFFD)."""
    hold = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:size]):
                hold = max(hold, size)
                break
    tail = len(text) - len(text.rstrip("\ufffd"))
    return max(hold, tail)
