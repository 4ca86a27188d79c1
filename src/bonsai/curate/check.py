"""Checking a dataset before it is taught and trained on: one list of findings, each with a
severity, a code, the records involved and a short message.

The finding the project cares most about is the *contradiction*: the same (or nearly the same)
instruction and input with different answers in a category that has one answer. Training on both
pulls the model two ways, and the loss stops falling smoothly. Prompts are compared after NFKC,
case and whitespace folding; "nearly the same" is a Jaccard similarity of character 3-grams of at
least ``near_threshold`` for the instruction and for the input alike (found with MinHash/LSH, see
:mod:`bonsai.curate.similarity`). Two answers agree when they are equal after folding and edge
punctuation, alike by the same measure, or one says the other ("Tokyo" / "It is Tokyo.").
"""

from __future__ import annotations

import functools
import itertools
import math
import re
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from bonsai.curate.check_args import CheckArgs
from bonsai.curate.similarity import (
    Grams,
    UnionFind,
    contains_answer,
    jaccard,
    near_groups,
    normalise,
    shingle_set,
    trim_answer,
)
from bonsai.curate.tokens import CountTokens, record_tokens
from bonsai.records import (
    CATEGORIES,
    REASONING_MAX_LINES,
    REASONING_MAX_WORDS,
    UNIQUE_CATEGORIES,
    Record,
    describe_invisible,
    has_visible_text,
)

SEVERITIES: tuple[str, ...] = ("error", "warning", "info")
"""Most severe first. Exit codes: 2 with an error, 1 with a warning, else 0."""

CODES: dict[str, str] = {
    "empty-field": "instruction or output is empty",
    "invisible-text": "a text of only invisible characters (zero-width, bidi marks, NUL)",
    "unknown-category": "category is not one of the seven",
    "contradiction": "same or near-same prompt, different answers, in a category with one answer",
    "exact-duplicate": "same instruction, input and output (after folding case, width, spaces)",
    "near-duplicate": "same or near-same instruction and input as another record",
    "length-outlier": "over --max-tokens, or far longer or shorter than usual for its category",
    "translation-without-source": "a translation with nothing to translate",
    "category-language-mismatch": "translations name two languages (src-dst); others one",
    "missing-category": "no category yet",
    "missing-language": "no language yet",
    "unknown-language": "language is not an ISO 639-1 code or a src-dst pair",
    "reasoning-too-long": (
        f"reasoning over {REASONING_MAX_LINES} lines or {REASONING_MAX_WORDS} words"
    ),
    "missing-reasoning": "no reasoning yet",
}
"""Every finding code, in the order reports show them within a severity."""

MIN_OUTLIER_GROUP = 20
"""A category with fewer records than this is compared with the whole dataset for length."""

OUTLIER_RATIO = 3.0
"""A length outlier is also at least this many times longer (or shorter) than typical: in a
tightly written category a record at half the usual length is far out by z-score, yet fine."""

MIN_LOG_MAD = 0.1
"""Smallest spread of log lengths used for z-scores (about 10% in length)."""

MAX_ANSWERS_COMPARED = 40
"""Distinct answers of one prompt compared pair by pair; beyond, each only with the first."""

_LANGUAGE = re.compile(r"^[a-z]{2,3}$")
_LANGUAGE_PAIR = re.compile(r"^([a-z]{2,3})-([a-z]{2,3})$")


@dataclass
class Finding:
    """One problem (or note) about one or more records."""

    severity: str
    code: str
    message: str
    record_ids: list[str]
    details: dict[str, Any] = field(default_factory=dict)
    """Code-specific data: the records side by side for a contradiction, token counts, ..."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CheckReport:
    """Everything a check found, in report order (severity, code, record order)."""

    records: int
    findings: list[Finding]
    dataset: str | None = None
    tokens: dict[str, int] | None = None
    """Each record's total tokens, by id; None when lengths were not checked."""
    seconds: dict[str, float] = field(default_factory=dict)
    """Time per part of the check, for benchmarks."""

    @property
    def exit_code(self) -> int:
        """0 when clean or only info, 1 with warnings, 2 with errors."""
        severities = {f.severity for f in self.findings}
        return 2 if "error" in severities else 1 if "warning" in severities else 0

    def by_severity(self) -> dict[str, int]:
        counts = Counter(f.severity for f in self.findings)
        return {s: counts.get(s, 0) for s in SEVERITIES}

    def by_code(self) -> dict[str, dict[str, int]]:
        """code -> {'findings': n, 'records': distinct records involved}, in report order."""
        out: dict[str, dict[str, int]] = {}
        ids: dict[str, set[str]] = defaultdict(set)
        for f in self.findings:
            entry = out.setdefault(f.code, {"findings": 0, "records": 0})
            entry["findings"] += 1
            ids[f.code].update(f.record_ids)
        for code, entry in out.items():
            entry["records"] = len(ids[code])
        return out

    def of_code(self, code: str) -> list[Finding]:
        return [f for f in self.findings if f.code == code]

    @property
    def contradictions(self) -> list[Finding]:
        return self.of_code("contradiction")

    def findings_by_record(self) -> dict[str, list[Finding]]:
        """Record id -> the findings that name it (to show beside a record, e.g. in eval)."""
        out: dict[str, list[Finding]] = defaultdict(list)
        for f in self.findings:
            for record_id in f.record_ids:
                out[record_id].append(f)
        return dict(out)

    def summary(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "findings": len(self.findings),
            "by_severity": self.by_severity(),
            "by_code": self.by_code(),
            "exit_code": self.exit_code,
            "tokens_checked": self.tokens is not None,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "summary": self.summary(),
            "findings": [f.to_dict() for f in self.findings],
        }


# -- the checks ------------------------------------------------------------------------------------


def check_records(
    records: Sequence[Record],
    count_tokens: CountTokens | None = None,
    config: CheckArgs | None = None,
    *,
    dataset: str | None = None,
) -> CheckReport:
    """Check ``records``. Token lengths are checked only when ``count_tokens`` is given (a
    :class:`bonsai.curate.tokens.TokenCounter` of the student's tokenizer)."""
    config = config or CheckArgs()
    findings: list[Finding] = []
    seconds: dict[str, float] = {}

    started = time.perf_counter()
    findings += _field_findings(records)
    findings += _language_findings(records)
    seconds["fields"] = time.perf_counter() - started

    started = time.perf_counter()
    findings += _duplicate_findings(records, config.near_threshold)
    seconds["duplicates"] = time.perf_counter() - started

    tokens = None
    if count_tokens is not None:
        started = time.perf_counter()
        counts = record_tokens(records, count_tokens)
        tokens = {r.id: n for r, n in zip(records, counts, strict=True)}
        findings += _length_findings(records, counts, config)
        seconds["tokens"] = time.perf_counter() - started

    position = {r.id: i for i, r in enumerate(records)}
    code_order = {code: i for i, code in enumerate(CODES)}
    findings.sort(
        key=lambda f: (
            SEVERITIES.index(f.severity),
            code_order[f.code],
            min((position.get(i, 0) for i in f.record_ids), default=0),
        )
    )
    return CheckReport(len(records), findings, dataset=dataset, tokens=tokens, seconds=seconds)


def _blank(value: str | None) -> bool:
    return value is None or not value.strip()


def _invisible_findings(record: Record) -> list[Finding]:
    """Texts that are not empty yet show nothing: an error where the model needs text."""
    out = []
    for name in ("instruction", "input", "output", "reasoning"):
        text = getattr(record, name)
        if _blank(text) or has_visible_text(text):
            continue
        severity = "error" if name in ("instruction", "output") else "warning"
        message = f"{name} holds only invisible characters ({describe_invisible(text)})"
        out.append(Finding(severity, "invisible-text", message, [record.id]))
    return out


def _field_findings(records: Sequence[Record]) -> list[Finding]:
    from bonsai.teach.validate import count_words

    out: list[Finding] = []
    no_category, no_language, no_reasoning = [], [], []
    for r in records:
        for name in ("instruction", "output"):
            if _blank(getattr(r, name)):
                out.append(Finding("error", "empty-field", f"{name} is empty", [r.id]))
        out += _invisible_findings(r)
        if r.category is None:
            no_category.append(r.id)
        elif r.category not in CATEGORIES:
            out.append(
                Finding(
                    "error",
                    "unknown-category",
                    f"category '{r.category}' is not one of: {', '.join(CATEGORIES)}",
                    [r.id],
                )
            )
        if _blank(r.language):
            no_language.append(r.id)
        if _blank(r.reasoning):
            no_reasoning.append(r.id)
        else:
            assert r.reasoning is not None
            lines = [line for line in r.reasoning.splitlines() if line.strip()]
            words = count_words(r.reasoning)
            if len(lines) > REASONING_MAX_LINES or words > REASONING_MAX_WORDS:
                out.append(
                    Finding(
                        "warning",
                        "reasoning-too-long",
                        f"reasoning has {len(lines)} lines and {words} words (at most "
                        f"{REASONING_MAX_LINES} lines and {REASONING_MAX_WORDS} words)",
                        [r.id],
                        {"lines": len(lines), "words": words},
                    )
                )
    if no_category:
        out.append(
            Finding(
                "warning",
                "missing-category",
                f"{_plural(len(no_category), 'record')} without a category: "
                "`bonsai data annotate` suggests one",
                no_category,
            )
        )
    if no_language:
        out.append(
            Finding(
                "warning",
                "missing-language",
                f"{_plural(len(no_language), 'record')} without a language: "
                "`bonsai data annotate` detects it",
                no_language,
            )
        )
    if no_reasoning:
        out.append(
            Finding(
                "info",
                "missing-reasoning",
                f"{_plural(len(no_reasoning), 'record')} without reasoning yet: "
                "`bonsai teach` writes it",
                no_reasoning,
            )
        )
    return out


# -- category and language -------------------------------------------------------------------------

_LANGUAGE_WORDS = re.compile(
    r"english|japanese|chinese|mandarin|korean|french|german|spanish|italian|portuguese|russian"
    r"|dutch|arabic|vietnamese|thai|英語|英语|英文|日本語|日语|日文|日語|中国語|中文|汉语|漢語"
    r"|韓国語|韩语|フランス語|法语|ドイツ語|德语|スペイン語|西班牙语",
    re.IGNORECASE,
)
_POINTS_AT_ABSENT = re.compile(
    r"\b(?:the following|below|above|this (?:sentence|text|passage|paragraph|message|phrase"
    r"|word|line|note|email|letter))\b|以下|次の|下記|この文|上記|下面|下列|如下|这段|这句|這段|這句",
    re.IGNORECASE,
)
_FILLER = re.compile(
    r"\b(?:translate[sd]?|translation|translating|please|kindly|can|could|would|you|me|for|into"
    r"|to|from|in|the|a|an|it|its|sentence|text|phrase|word|say|how|do|does|what|is|language"
    r"|version|following)\b"
    r"|翻訳|翻译|翻譯|訳し|訳す|訳|して|ください|下さい|お願い|します|にして|語|文章|文|句子|请|請|把|将"
    r"|成|为|一下|吗|か|に|を|へ|で|の|は",
    re.IGNORECASE,
)
_LETTER = re.compile(r"[^\W\d_]")


def has_source_text(record: Record) -> bool:
    """Whether a translation record has something to translate: an input, quoted text or text
    after a colon in the instruction, or words left over once the request itself is taken out
    ("How do you say cat in French?" keeps "cat"; "Translate this into English." keeps none)."""
    from bonsai.curate.language import source_text

    if not _blank(record.input):
        return True
    if source_text(record) != record.instruction:
        return True  # quoted, or after a colon
    if _POINTS_AT_ABSENT.search(record.instruction):
        return False
    rest = _FILLER.sub(" ", _LANGUAGE_WORDS.sub(" ", record.instruction))
    return len(_LETTER.findall(rest)) >= 2


def _language_findings(records: Sequence[Record]) -> list[Finding]:
    out: list[Finding] = []
    for r in records:
        language = (r.language or "").strip()
        pair = _LANGUAGE_PAIR.match(language)
        if language and not pair and not _LANGUAGE.match(language):
            out.append(
                Finding(
                    "warning",
                    "unknown-language",
                    f"language '{language}' is not an ISO 639-1 code (ja, en, zh, ...) "
                    "or a translation pair (ja-en)",
                    [r.id],
                )
            )
        if r.category == "translation":
            if not has_source_text(r):
                out.append(
                    Finding(
                        "warning",
                        "translation-without-source",
                        "translation with no source text: no input and nothing quoted in the "
                        "instruction",
                        [r.id],
                    )
                )
            if language and _LANGUAGE.match(language):
                out.append(
                    Finding(
                        "warning",
                        "category-language-mismatch",
                        f"translation with language '{language}': name both sides, like ja-en",
                        [r.id],
                    )
                )
            elif pair and pair.group(1) == pair.group(2):
                out.append(
                    Finding(
                        "warning",
                        "category-language-mismatch",
                        f"translation from and into the same language ('{language}')",
                        [r.id],
                    )
                )
        elif pair and r.category is not None:
            out.append(
                Finding(
                    "warning",
                    "category-language-mismatch",
                    f"language '{language}' names two languages, but the category is "
                    f"{r.category}, not translation",
                    [r.id],
                )
            )
    return out


# -- duplicates and contradictions -----------------------------------------------------------------


def _side_by_side(records: Sequence[Record], groups: Sequence[Sequence[int]]) -> dict[str, Any]:
    rows = []
    for answer, members in enumerate(groups):
        for i in members:
            r = records[i]
            rows.append(
                {
                    "id": r.id,
                    "answer": answer,
                    "category": r.category,
                    "language": r.language,
                    "instruction": r.instruction,
                    "input": r.input,
                    "output": r.output,
                }
            )
    return {"records": rows, "answers": len(groups)}


def _answer_groups(
    members: Sequence[int], keys_of: dict[int, str], threshold: float
) -> list[list[int]]:
    """The members grouped by answer (``keys_of``: each member's :func:`answer_key`): answers
    that agree (equal, alike, or one inside the other) are one group. Groups in record order."""
    by_key: dict[str, list[int]] = {}
    for i in members:
        by_key.setdefault(keys_of[i], []).append(i)
    keys = list(by_key)
    joined = UnionFind(len(keys))
    grams: dict[int, Grams] = {}
    pairs: Iterable[tuple[int, int]]
    if len(keys) <= MAX_ANSWERS_COMPARED:
        pairs = itertools.combinations(range(len(keys)), 2)
    else:
        pairs = ((0, b) for b in range(1, len(keys)))
    find = joined.find
    for a, b in pairs:
        # The groups are the connected parts of the "agree" graph: a pair already joined through
        # others cannot change them. In a cluster of 40 rewordings that agree, this measures
        # about 40 pairs instead of 780.
        if find(a) == find(b):
            continue
        if _answers_agree(keys, grams, a, b, threshold):
            joined.union(a, b)
    groups = [sorted(i for k in ks for i in by_key[keys[k]]) for ks in joined.groups().values()]
    return sorted(groups)


def _answers_agree(
    keys: Sequence[str], grams: dict[int, Grams], a: int, b: int, threshold: float
) -> bool:
    """Whether answers ``keys[a]`` and ``keys[b]`` agree: alike by 3-grams, or one inside the
    other. ``grams`` caches each answer's 3-grams by index."""
    for k in (a, b):
        if k not in grams:
            grams[k] = shingle_set(keys[k])
    small, large = sorted((len(grams[a]), len(grams[b])))
    # Jaccard is at most small/large: far-apart sizes skip the set intersection.
    if large and small / large >= threshold and jaccard(grams[a], grams[b]) >= threshold:
        return True
    short, long = sorted((keys[a], keys[b]), key=len)
    return contains_answer(short, long)


def _duplicate_findings(records: Sequence[Record], threshold: float) -> list[Finding]:
    out: list[Finding] = []
    usable = [
        i for i, r in enumerate(records) if not _blank(r.output) and not _blank(r.instruction)
    ]
    # Copies and rewordings of a record share its input (often long) and often more: each
    # distinct text is folded once.
    fold = functools.cache(normalise)
    folded = {i: (fold(records[i].instruction), fold(records[i].input)) for i in usable}
    outputs = {i: fold(records[i].output) for i in usable}

    # Exact duplicates: the same three texts after folding.
    exact: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for i in usable:
        exact[(*folded[i], outputs[i])].append(i)
    exact_of: dict[int, int] = {}
    for members in exact.values():
        if len(members) > 1:
            for i in members:
                exact_of[i] = members[0]
            out.append(
                Finding(
                    "warning",
                    "exact-duplicate",
                    f"{len(members)} copies of one record: keep one",
                    [records[i].id for i in members],
                )
            )

    # Prompts: records with the same folded instruction and input share one.
    by_prompt: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i in usable:
        by_prompt[folded[i]].append(i)
    prompts = list(by_prompt)
    clusters = near_groups([p[0] for p in prompts], [p[1] for p in prompts], threshold)
    in_cluster = {p for cluster in clusters for p in cluster}
    clusters += [
        [p] for p, key in enumerate(prompts) if len(by_prompt[key]) > 1 and p not in in_cluster
    ]

    for cluster in clusters:
        members = sorted(i for p in cluster for i in by_prompt[prompts[p]])
        if len({exact_of.get(i, i) for i in members}) < 2:
            continue  # only copies of one record: reported above
        keys_of = {i: trim_answer(outputs[i]) for i in members}  # answer_key, from the fold
        out.append(_judge_cluster(records, members, keys_of, folded, threshold))
    return out


def _judge_cluster(
    records: Sequence[Record],
    members: list[int],
    keys_of: dict[int, str],
    folded: dict[int, tuple[str, str]],
    t: float,
) -> Finding:
    """One finding for records that share a (near-)same prompt: a contradiction when their
    answers disagree in a unique category (an error when two disagreeing records have the very
    same prompt), else a near-duplicate."""
    ids = [records[i].id for i in members]
    same = "the same prompt" if len({folded[i] for i in members}) == 1 else "near-same prompts"
    unique = [i for i in members if records[i].category in UNIQUE_CATEGORIES]
    unique_groups = _answer_groups(unique, keys_of, t) if len(unique) > 1 else []
    if len(unique_groups) > 1:
        categories = sorted({records[i].category or "" for i in unique})
        unique_ids = [records[i].id for g in unique_groups for i in g]
        answers_per_prompt: dict[tuple[str, str], set[int]] = defaultdict(set)
        for n, group in enumerate(unique_groups):
            for i in group:
                answers_per_prompt[folded[i]].add(n)
        exact = any(len(answers) > 1 for answers in answers_per_prompt.values())
        return Finding(
            "error" if exact else "warning",
            "contradiction",
            f"{len(unique_groups)} different answers to {same} ({', '.join(categories)}): "
            "keep the right one, or make the prompts say what differs",
            unique_ids,
            _side_by_side(records, unique_groups),
        )
    # With every member in a unique category, the answers were just grouped above.
    all_unique = len(unique) == len(members) > 1
    groups = unique_groups if all_unique else _answer_groups(members, keys_of, t)
    if len(groups) > 1:
        return Finding(
            "info",
            "near-duplicate",
            f"{len(groups)} different answers to {same}: fine where many answers are good, but "
            f"the prompt weighs {len(members)} times in training",
            ids,
            _side_by_side(records, groups),
        )
    return Finding(
        "warning",
        "near-duplicate",
        f"{len(members)} records with {same} and the same answer in other words: keep one",
        ids,
        _side_by_side(records, groups),
    )


# -- lengths ---------------------------------------------------------------------------------------


def _length_findings(
    records: Sequence[Record], tokens: Sequence[int], config: CheckArgs
) -> list[Finding]:
    out: list[Finding] = []
    by_category: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(records):
        by_category[r.category or ""].append(i)
    pooled = list(range(len(records)))
    flagged: set[int] = set()
    for i, n in enumerate(tokens):
        if n > config.max_tokens:
            flagged.add(i)
            out.append(
                Finding(
                    "warning",
                    "length-outlier",
                    f"{n:,} tokens, over --max-tokens {config.max_tokens:,}: training would "
                    "cut it; shorten or split it",
                    [records[i].id],
                    {"tokens": n, "max_tokens": config.max_tokens},
                )
            )
    for category, members in by_category.items():
        group = members if len(members) >= MIN_OUTLIER_GROUP else pooled
        where = f"for {category}" if group is members and category else "for this dataset"
        logs = [math.log1p(tokens[i]) for i in group]
        median = statistics.median(logs)
        # A floor on the spread: when most records have one length, MAD is 0 and any other
        # length would be "infinitely" far out; the 3x ratio below still has to hold.
        mad = max(statistics.median(abs(x - median) for x in logs), MIN_LOG_MAD)
        typical = round(math.expm1(median))
        for i in members:
            if i in flagged:
                continue
            z = 0.6745 * (math.log1p(tokens[i]) - median) / mad
            ratio = (tokens[i] + 1) / (typical + 1)
            if abs(z) > config.outlier_z and not 1 / OUTLIER_RATIO < ratio < OUTLIER_RATIO:
                kind = "long" if z > 0 else "short"
                out.append(
                    Finding(
                        "info",
                        "length-outlier",
                        f"unusually {kind} {where}: {tokens[i]:,} tokens (typical {typical:,})",
                        [records[i].id],
                        {"tokens": tokens[i], "typical": typical, "z": round(z, 1)},
                    )
                )
    return out


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"
