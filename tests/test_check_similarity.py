"""`bonsai.curate.similarity` and answer grouping in `bonsai.curate.check`: the fast forms of the
measures agree with their plain definitions, and big clusters are judged as a whole."""

from __future__ import annotations

import random
import re

import pytest

from bonsai.curate.check import check_records
from bonsai.curate.similarity import contains_answer, jaccard, shingle_set
from bonsai.records import Record


def plain_grams(text: str) -> frozenset[str]:
    """3-grams as a set of strings: the definition the packed form must match."""
    if len(text) < 3:
        return frozenset((text,)) if text else frozenset()
    return frozenset(text[i : i + 3] for i in range(len(text) - 2))


def plain_jaccard(a: str, b: str) -> float:
    x, y = plain_grams(a), plain_grams(b)
    if not x and not y:
        return 1.0
    return len(x & y) / len(x | y)


def plain_contains(short: str, long: str) -> bool:
    """Whole-word containment as a regex says it (for Latin-script answers)."""
    return bool(short) and re.search(rf"(?<!\w){re.escape(short)}(?!\w)", long) is not None


# Letters, digits of other scripts, a combining mark, "_", punctuation and space: what decides
# whether a match stands as a whole word.
BOUNDARY_CHARS = [*"ab _-.'()1", "²", "½", "٣", "\u0301", "é", "ß", "Ⅻ"]


def test_contains_answer_matches_the_regex_definition() -> None:
    rng = random.Random(7)
    agreeing = 0
    for _ in range(20_000):
        short = "".join(rng.choice(BOUNDARY_CHARS) for _ in range(rng.randint(1, 3)))
        long = "".join(rng.choice(BOUNDARY_CHARS) for _ in range(rng.randint(0, 12)))
        expected = plain_contains(short, long)
        assert contains_answer(short, long) == expected, (short, long)
        agreeing += expected
    assert 500 < agreeing < 19_500  # both outcomes were tried many times


@pytest.mark.parametrize(
    ("short", "long", "expected"),
    [
        ("tokyo", "it is tokyo.", True),
        ("no", "not at all", False),
        ("no", "nono no", True),  # the third occurrence stands alone
        ("a_b", "xa_b", False),  # "_" is a word character
        ("5", "5²", False),  # so is a superscript digit
        ("東京", "首都は東京です", True),  # CJK: a plain substring
    ],
)
def test_contains_answer_cases(short: str, long: str, expected: bool) -> None:
    assert contains_answer(short, long) is expected


def test_packed_grams_give_the_plain_jaccard() -> None:
    rng = random.Random(11)
    alphabet = [*"abc .", "日", "本", "😀", "é", "\ud800"]  # astral and a lone surrogate too
    texts = ["", "a", "ab", "abc", "日本", "😀"]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 9))) for _ in range(300)]
    for a in texts:
        assert len(shingle_set(a)) == len(plain_grams(a)), a
        for b in rng.sample(texts, 20):
            assert jaccard(shingle_set(a), shingle_set(b)) == plain_jaccard(a, b), (a, b)


def variants(n: int, answer) -> list[Record]:
    phrases = ["", " Please.", " Be brief.", " Thanks!", " In short."]
    return [
        Record(
            f"v-{k:02d}",
            "When did the museum on Elm Street first open its doors to visitors"
            + phrases[k % len(phrases)],
            output=answer(k),
            category="open_qa",
            language="en",
        )
        for k in range(n)
    ]


def test_forty_rewordings_with_forty_answers_are_one_contradiction() -> None:
    records = variants(40, lambda k: f"In {1900 + k}.")
    report = check_records(records)
    [finding] = report.findings[:1]
    assert finding.code == "contradiction" and finding.severity == "error"
    assert sorted(finding.record_ids) == [r.id for r in records]
    assert finding.details["answers"] == 40
    assert [f.code for f in report.findings[1:]] == ["missing-reasoning"]


def test_forty_rewordings_with_one_answer_in_other_words_are_a_near_duplicate() -> None:
    answer = "The museum first opened its doors to visitors in the spring of 1921"
    records = variants(40, lambda k: f"{answer} (note {k})")
    report = check_records(records)
    [finding] = report.of_code("near-duplicate")
    assert finding.severity == "warning" and finding.details["answers"] == 1
    assert sorted(finding.record_ids) == [r.id for r in records]
    assert "contradiction" not in [f.code for f in report.findings]


def test_answers_alike_through_a_third_are_one_answer() -> None:
    base = "the museum opened to visitors in the spring of that year after a long wait"
    first, middle, last = f"yes, {base}", f"{base} indeed", f"well, {base} indeed, truly"
    alike = 0.8
    assert jaccard(shingle_set(first), shingle_set(middle)) >= alike
    assert jaccard(shingle_set(middle), shingle_set(last)) >= alike
    assert jaccard(shingle_set(first), shingle_set(last)) < alike
    assert not contains_answer(first, last) and not contains_answer(last, first)
    records = [
        Record(f"t-{k}", "When did the museum open?", output=o, category="open_qa", language="en")
        for k, o in enumerate([first, last, middle])
    ]
    report = check_records(records)
    [finding] = report.of_code("near-duplicate")
    assert finding.details["answers"] == 1
    assert "contradiction" not in [f.code for f in report.findings]
