"""Per-category metrics: what "better" means differs between unique and creative categories.

- unique (open_qa, closed_qa, classification): normalised exact match and "contains" match;
  facts recall (an accepted answer appears in the reply) and the label a reply gives;
- translation: chrF (sacrebleu), per direction, and whether the reply is in the target language;
- creative (brainstorming, creative, question_to_question): loops, repeated lines, distinct-n,
  length, and for question_to_question the sentences that are questions.

All functions are pure and work on Japanese and Chinese as well as on space-separated languages.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bonsai.util.chars import CJK_FOLDED, fold_words

_CJK = re.compile(f"[{CJK_FOLDED}]")  # units() sees NFKC-folded text
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s*|\n+")


normalise = fold_words
"""Compare answers the way a person would: NFKC (full-width → half-width), case, punctuation
and spacing do not matter (:func:`bonsai.util.chars.fold_words`)."""


def exact_match(prediction: str, reference: str) -> bool:
    return normalise(prediction) == normalise(reference) != ""


def contains_match(prediction: str, reference: str) -> bool:
    """The reference answer appears in the prediction (or the other way round, for short
    predictions of long references), after normalisation."""
    pred, ref = normalise(prediction), normalise(reference)
    if not pred or not ref:
        return False
    return ref in pred or (len(pred) >= 2 and pred in ref and len(pred) >= 0.5 * len(ref))


def chrf(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Corpus chrF (0–100) from sacrebleu; character-based, so it suits Japanese and Chinese."""
    from sacrebleu.metrics import CHRF

    if not predictions:
        return 0.0
    return float(CHRF().corpus_score(list(predictions), [list(references)]).score)


def sentence_chrf(prediction: str, reference: str) -> float:
    from sacrebleu.metrics import CHRF

    return float(CHRF().sentence_score(prediction, [reference]).score)


def units(text: str) -> list[str]:
    """Tokens for n-gram statistics: words for spaced languages, characters for CJK."""
    out: list[str] = []
    for word in normalise(text).split():
        if _CJK.search(word):
            out.extend(ch for ch in word)
        else:
            out.append(word)
    return out


def distinct_n(texts: Sequence[str], n: int = 2) -> float:
    """Share of n-grams that are unique across all texts (higher = more diverse)."""
    total, seen = 0, set()
    for text in texts:
        toks = units(text)
        grams = [tuple(toks[i : i + n]) for i in range(len(toks) - n + 1)]
        total += len(grams)
        seen.update(grams)
    return len(seen) / total if total else 0.0


def is_looping(text: str, *, min_repeats: int = 3, min_units: int = 6) -> bool:
    """True when a span repeats back to back ``min_repeats`` times covering at least
    ``min_units`` units, or one sentence recurs ``min_repeats`` times: the base model's typical
    failure ("富士山は、日本で一番高い山です。" over and over)."""
    toks = units(text)
    n = len(toks)
    first_span = max(1, -(-min_units // min_repeats))
    for span in range(first_span, n // min_repeats + 1):
        for start in range(0, n - span * min_repeats + 1):
            block = toks[start : start + span]
            if all(
                toks[start + k * span : start + (k + 1) * span] == block
                for k in range(1, min_repeats)
            ):
                return True
    sentences = [normalise(s) for s in _SENTENCE_END.split(text) if normalise(s)]
    return any(sentences.count(s) >= min_repeats for s in set(sentences))


def repeated_line_ratio(text: str) -> float:
    """Share of non-empty lines (or sentences, for one-line text) that repeat an earlier one."""
    parts = [normalise(p) for p in text.splitlines() if normalise(p)]
    if len(parts) <= 1:
        parts = [normalise(s) for s in _SENTENCE_END.split(text) if normalise(s)]
    if not parts:
        return 0.0
    return (len(parts) - len(set(parts))) / len(parts)


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?。！？])\s*|\n+", text) if s.strip()]


def _is_question(sentence: str) -> bool:
    return sentence.endswith(("?", "？")) or sentence.endswith(("か。", "か"))


def question_share(text: str) -> float:
    """Share of sentences that are questions (ending in ? or ？, or Japanese か。)."""
    sentences = _sentences(text)
    if not sentences:
        return 0.0
    return sum(map(_is_question, sentences)) / len(sentences)


def question_count(text: str) -> int:
    """How many sentences of ``text`` are questions (as :func:`question_share` counts them)."""
    return sum(map(_is_question, _sentences(text)))


_DECIMAL_POINT = re.compile(r"(?<=\d)\.(?=\d)")
_KEPT_POINT = "\ue000"  # a private-use character: not punctuation, so it survives the next step
_FIRST_PART = re.compile(r"[.。!！?？\n:：;；,，、]")


def compact(text: str) -> str:
    """:func:`normalise` without any spaces, a decimal point between digits kept: "4.2 kg",
    "4.2kg" and "４．２ｋｇ" are one text, and "4.2" is not "42"."""
    text = _DECIMAL_POINT.sub(_KEPT_POINT, unicodedata.normalize("NFKC", text))
    return normalise(text).replace(" ", "")


def recalls(prediction: str, accepted: Sequence[str]) -> bool:
    """An accepted answer appears in the prediction (compared with :func:`compact`)."""
    pred = compact(prediction)
    return any((ref := compact(answer)) and ref in pred for answer in accepted)


def gives_label(prediction: str, labels: Sequence[str]) -> bool:
    """The prediction is one of ``labels``: the whole reply, or its first part up to the first
    sentence mark or comma ("Positive. The review …"), after :func:`normalise`."""
    first = _FIRST_PART.split(prediction.strip(), maxsplit=1)[0]
    said = {normalise(prediction), normalise(first)} - {""}
    return any(normalise(label) in said for label in labels)


_NOTE_LINE = re.compile(r"(?m)^\s*\[\d+\]")
READ_BACK_SHARE = 0.5
"""A reply holding this share of a given text's character 5-grams reads the text back."""


def copies_notes(reply: str) -> bool:
    """The reply copies the prompt's notes section: a line of it starts with a note's number
    ("[1] Care log > Watering"), as the notes do. An answer says what a note says, not where."""
    return bool(_NOTE_LINE.search(reply))


def reads_back(reply: str, text: str) -> bool:
    """The reply repeats most of ``text`` (the text given with the question) instead of
    answering from it: at least :data:`READ_BACK_SHARE` of the text's character 5-grams, after
    :func:`compact`, are in the reply. A text under 20 characters is never taken as read back."""
    source, said = compact(text), compact(reply)
    if len(source) < 20:
        return False
    grams = {source[i : i + 5] for i in range(len(source) - 4)}
    return sum(gram in said for gram in grams) >= READ_BACK_SHARE * len(grams)


def copies_prompt(reply: str, given: str) -> bool:
    """The reply copies the notes (:func:`copies_notes`) or reads the given text back
    (:func:`reads_back`): a right answer inside it was found, not picked out."""
    return copies_notes(reply) or reads_back(reply, given)


@dataclass
class Interval:
    mean: float
    low: float
    high: float
    n: int


def bootstrap(
    values: Sequence[float],
    *,
    statistic: Callable[[Sequence[float]], float] | None = None,
    samples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval | None:
    """Percentile bootstrap interval of the mean (or ``statistic``); None when n < 5."""
    if len(values) < 5:
        return None
    stat = statistic or (lambda xs: sum(xs) / len(xs))
    rng = random.Random(seed)
    n = len(values)
    draws = sorted(stat([values[rng.randrange(n)] for _ in range(n)]) for _ in range(samples))
    tail = (1 - confidence) / 2
    return Interval(
        mean=stat(values),
        low=draws[int(tail * samples)],
        high=draws[min(samples - 1, int((1 - tail) * samples))],
        n=n,
    )


def paired_bootstrap_delta(
    a: Sequence[float], b: Sequence[float], *, samples: int = 1000, seed: int = 0
) -> Interval | None:
    """Interval of mean(b − a) over paired items (same prompts, two models)."""
    if len(a) != len(b):
        raise ValueError("paired samples must have the same length")
    return bootstrap([y - x for x, y in zip(a, b, strict=True)], samples=samples, seed=seed)
