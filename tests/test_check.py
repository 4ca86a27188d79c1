"""`bonsai.curate.check`: each kind of finding on small crafted records (en/ja/zh), and none on
clean ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bonsai.curate.check import CODES, SEVERITIES, CheckArgs, check_records, has_source_text
from bonsai.curate.tokens import TokenCounter
from bonsai.errors import BonsaiError
from bonsai.records import Record

SAMPLE = Path(__file__).resolve().parents[1] / "src" / "bonsai" / "sample" / "cat-care.jsonl"


def rec(id: str, instruction: str, output: str, **kw) -> Record:
    kw.setdefault("category", "open_qa")
    kw.setdefault("language", "en")
    kw.setdefault("reasoning", "You should recall the fact and state it in one sentence.")
    return Record(id=id, instruction=instruction, output=output, **kw)


CLEAN = [
    rec("en-1", "How old is Mochi?", "She is six years old."),
    rec("en-2", "What does Mochi eat in the morning?", "A pouch of chicken wet food."),
    rec("ja-1", "もちの動物病院はどこですか？", "さくら動物病院です。", language="ja"),
    rec("ja-2", "もちの好きなおもちゃは何ですか？", "羽根のついたじゃらしです。", language="ja"),
    rec("zh-1", "麻糬每天吃几次饭？", "一天吃三次。", language="zh"),
    rec(
        "tr-1",
        "Translate into English: 猫に水をあげてください。",
        "Please give the cat water.",
        category="translation",
        language="ja-en",
    ),
    rec(
        "cr-1",
        "Write a haiku about a sleeping cat.",
        "Sun on the windowsill / a tabby folds into dreams / the clock forgets her",
        category="creative",
        reasoning="Creator should choose one quiet image.",
    ),
]


def codes(report) -> list[str]:
    return [f.code for f in report.findings]


def only(report, code: str):
    found = report.of_code(code)
    assert len(found) == 1, [f.to_dict() for f in report.findings]
    return found[0]


def test_clean_records_have_no_findings() -> None:
    report = check_records(CLEAN)
    assert report.findings == []
    assert report.exit_code == 0
    assert report.summary()["by_severity"] == {"error": 0, "warning": 0, "info": 0}


def test_empty_instruction_and_output_are_errors() -> None:
    records = [
        *CLEAN,
        rec("e-1", "   ", "An answer."),
        rec("e-2", "猫の名前は？", "", language="ja"),
    ]
    report = check_records(records)
    empty = report.of_code("empty-field")
    assert [(f.severity, f.record_ids, f.message) for f in empty] == [
        ("error", ["e-1"], "instruction is empty"),
        ("error", ["e-2"], "output is empty"),
    ]
    assert report.exit_code == 2


def test_missing_labels_and_reasoning() -> None:
    records = [
        *CLEAN,
        rec("m-1", "Is Mochi an indoor cat?", "Yes, she lives indoors.", category=None),
        rec("m-2", "麻糬喜欢什么？", "喜欢晒太阳。", language=None),
        rec("m-3", "What colour is Mochi?", "Brown tabby.", reasoning=None),
        rec("m-4", "Is Mochi shy?", "Yes, with strangers.", reasoning="  "),
    ]
    report = check_records(records)
    category = only(report, "missing-category")
    assert (category.severity, category.record_ids) == ("warning", ["m-1"])
    assert "bonsai data annotate" in category.message
    language = only(report, "missing-language")
    assert (language.severity, language.record_ids) == ("warning", ["m-2"])
    reasoning = only(report, "missing-reasoning")
    assert (reasoning.severity, reasoning.record_ids) == ("info", ["m-3", "m-4"])
    assert "bonsai teach" in reasoning.message
    assert report.exit_code == 1


def test_unknown_category_and_language() -> None:
    records = [
        *CLEAN,
        rec("u-1", "Name a cat toy.", "A feather wand.", category="poetry"),
        rec("u-2", "Name a cat food.", "Wet food.", language="english"),
    ]
    report = check_records(records)
    assert only(report, "unknown-category").record_ids == ["u-1"]
    assert only(report, "unknown-category").severity == "error"
    assert only(report, "unknown-language").record_ids == ["u-2"]


def test_exact_duplicates_fold_case_width_and_spaces() -> None:
    records = [
        *CLEAN,
        rec("d-1", "What is Mochi's ID?", "ABC123", language="en"),
        rec("d-2", "  what is  MOCHI's id? ", "ＡＢＣ１２３"),  # full-width letters and digits
        rec("d-3", "もちの体重は？", "４．２ｋｇです。", language="ja"),
        rec("d-4", "もちの体重は？", "4.2kgです。", language="ja"),
    ]
    report = check_records(records)
    found = report.of_code("exact-duplicate")
    assert sorted(f.record_ids for f in found) == [["d-1", "d-2"], ["d-3", "d-4"]]
    assert all(f.severity == "warning" for f in found)
    # Copies of one record are not also a near-duplicate or a contradiction.
    assert "near-duplicate" not in codes(report) and "contradiction" not in codes(report)


def test_contradiction_on_the_same_prompt_is_an_error() -> None:
    records = [
        *CLEAN,
        rec("c-1", "麻糬几岁了？", "六岁。", language="zh"),
        rec("c-2", "麻糬几岁了？", "八岁。", language="zh"),
    ]
    report = check_records(records)
    found = only(report, "contradiction")
    assert found.severity == "error"
    assert found.record_ids == ["c-1", "c-2"]
    side = found.details["records"]
    assert [(r["id"], r["answer"], r["output"]) for r in side] == [
        ("c-1", 0, "六岁。"),
        ("c-2", 1, "八岁。"),
    ]
    assert found.details["answers"] == 2
    assert report.exit_code == 2
    assert [f.code for f in report.findings_by_record()["c-2"]] == ["contradiction"]


def test_contradiction_on_near_same_prompts_is_a_warning() -> None:
    question = "According to the vet's note, how much did Mochi weigh at her April check-up?"
    records = [
        *CLEAN,
        rec("n-1", question, "4.2 kg.", category="closed_qa"),
        rec("n-2", question.replace("vet's note", "vet note"), "3.6 kg.", category="closed_qa"),
    ]
    report = check_records(records)
    found = only(report, "contradiction")
    assert (found.severity, found.record_ids) == ("warning", ["n-1", "n-2"])
    # Above the pair's similarity the prompts are different questions: nothing is found.
    strict = check_records(records, config=CheckArgs(near_threshold=0.95))
    assert "contradiction" not in codes(strict) and "near-duplicate" not in codes(strict)


def test_japanese_near_same_prompts_with_different_answers() -> None:
    records = [
        *CLEAN,
        rec("j-1", "もちの体重は何キロですか？", "4.2キロです。", language="ja"),
        rec("j-2", "もちの体重は何キロですか", "3.6キロです。", language="ja"),
        rec("j-3", "もちの体重は何キロですか。", "４.２キロです", language="ja"),  # agrees with j-1
    ]
    found = only(check_records(records), "contradiction")
    assert found.severity == "warning"
    assert sorted(found.record_ids) == ["j-1", "j-2", "j-3"]
    answers = {r["id"]: r["answer"] for r in found.details["records"]}
    assert answers["j-1"] == answers["j-3"] != answers["j-2"]
    # Once two of them disagree on the very same prompt, it is an error.
    same = [*records, rec("j-4", "もちの体重は何キロですか", "5キロ", language="ja")]
    assert only(check_records(same), "contradiction").severity == "error"


def test_answers_that_agree_are_not_a_contradiction() -> None:
    records = [
        *CLEAN,
        rec("a-1", "What is the capital of Japan?", "Tokyo"),
        rec("a-2", "What is the capital of Japan?", "The capital of Japan is Tokyo."),
        rec("a-3", "Is Mochi a male cat?", "No.", category="classification"),
        rec("a-4", "Is Mochi a male cat?", "no", category="classification"),
    ]
    report = check_records(records)
    assert "contradiction" not in codes(report)
    near = report.of_code("near-duplicate")
    assert sorted(f.record_ids for f in near) == [["a-1", "a-2"], ["a-3", "a-4"]]
    assert all(f.severity == "warning" for f in near)


def test_yes_is_not_inside_not() -> None:
    records = [
        *CLEAN,
        rec("y-1", "Does Mochi like baths?", "no", category="classification"),
        rec("y-2", "Does Mochi like baths?", "not at all, she hides", category="classification"),
    ]
    assert only(check_records(records), "contradiction").record_ids == ["y-1", "y-2"]


def test_creative_pairs_with_different_outputs_are_not_contradictions() -> None:
    records = [
        *CLEAN,
        rec("p-1", "Write a haiku about Mochi.", "Whiskers in the sun", category="creative"),
        rec("p-2", "Write a haiku about Mochi.", "A grey blanket, kneaded", category="creative"),
        rec("p-3", "猫の名前を考えて", "タマ、ミケ", category="brainstorming", language="ja"),
        rec("p-4", "猫の名前を考えて", "もち、きなこ", category="brainstorming", language="ja"),
    ]
    report = check_records(records)
    assert "contradiction" not in codes(report)
    near = report.of_code("near-duplicate")
    assert sorted(f.record_ids for f in near) == [["p-1", "p-2"], ["p-3", "p-4"]]
    assert all(f.severity == "info" for f in near)
    assert report.exit_code == 0


def test_different_questions_are_not_near_duplicates() -> None:
    context = (
        "2025年4月12日 さくら動物病院 定期健診メモ：体重4.2kg（昨年4.1kg）。心臓・肺に異常なし。"
        "上の奥歯に軽い歯石あり、歯みがき継続。血液検査：クレアチニン1.9mg/dL。"
    )
    records = [
        *CLEAN,
        rec("q-1", "What is the capital of France?", "Paris."),
        rec("q-2", "What is the capital of Spain?", "Madrid."),
        rec("q-5", "Is 1,117 a prime number?", "Yes.", category="classification"),
        rec("q-6", "Is 1,119 a prime number?", "No.", category="classification"),
        rec("q-3", "もちの体重は？", "4.2kgです。", input=context, category="closed_qa"),
        rec("q-4", "歯について何と書いてある？", "軽い歯石。", input=context, category="closed_qa"),
    ]
    report = check_records(records)
    assert report.findings == []


def test_near_duplicate_threshold() -> None:
    a = "Give me some ideas to help Mochi drink more water."
    b = "Give me ideas to help Mochi drink more water."
    out = "Clean the fountain; add a second bowl; mix water into wet food."
    records = [
        *CLEAN,
        rec("t-1", a, out, category="brainstorming", reasoning="Creator should list ideas."),
        rec("t-2", b, out + " ", category="brainstorming", reasoning="Creator should list ideas."),
    ]
    # Jaccard of the two instructions' 3-grams is ~0.91.
    assert only(check_records(records), "near-duplicate").record_ids == ["t-1", "t-2"]
    loose = check_records(records, config=CheckArgs(near_threshold=0.9))
    assert only(loose, "near-duplicate").record_ids == ["t-1", "t-2"]
    strict = check_records(records, config=CheckArgs(near_threshold=0.95))
    assert strict.findings == []


@pytest.mark.parametrize(
    ("instruction", "input", "has_source"),
    [
        ("Translate into English: 猫に水をあげてください。", "", True),
        ("「ありがとう」を英語に訳してください。", "", True),
        ("请翻译成日语：麻糬不喜欢吸尘器的声音。", "", True),
        ("Translate the note into Japanese.", "Mochi's recheck is in October.", True),
        ("How do you say cat in French?", "", True),
        ("Translate this sentence into English.", "", False),
        ("英語に翻訳してください。", "", False),
        ("请把下面的句子翻译成日语。", "", False),
        ("Translate into Japanese.", "", False),
    ],
)
def test_translation_source_text(instruction: str, input: str, has_source: bool) -> None:
    record = rec("x", instruction, "…", input=input, category="translation", language="ja-en")
    assert has_source_text(record) is has_source
    found = "translation-without-source" in codes(check_records([record]))
    assert found is not has_source


def test_category_language_mismatches() -> None:
    records = [
        *CLEAN,
        rec("l-1", "Translate into English: 猫", "cat", category="translation", language="ja"),
        rec("l-2", "What is a cat?", "An animal.", language="ja-en"),
        rec("l-3", "Translate into English: cat", "cat", category="translation", language="en-en"),
    ]
    found = check_records(records).of_code("category-language-mismatch")
    assert [f.record_ids for f in found] == [["l-1"], ["l-2"], ["l-3"]]
    assert "ja-en" in found[0].message and "open_qa" in found[1].message


def test_reasoning_over_its_limits() -> None:
    six_lines = "\n".join(f"You should check point {i}." for i in range(6))
    many_words = "You should " + "really " * 125 + "think."
    long_ja = (
        "あなたは" + "猫の体重を確認して" * 30 + "答えるべきです。"
    )  # two CJK chars = one word
    records = [
        *CLEAN,
        rec("r-1", "Q1?", "A1.", reasoning=six_lines),
        rec("r-2", "Q2?", "A2.", reasoning=many_words),
        rec("r-3", "Q3?", "A3.", reasoning=long_ja, language="ja"),
        rec("r-4", "Q4?", "A4.", reasoning="\n".join(six_lines.splitlines()[:5])),
    ]
    found = check_records(records).of_code("reasoning-too-long")
    assert [f.record_ids for f in found] == [["r-1"], ["r-2"], ["r-3"]]
    assert found[0].details["lines"] == 6 and found[1].details["words"] > 120


def test_length_outliers_in_tokens(tiny_model_dir: Path) -> None:
    from tokenizers import Tokenizer

    counter = TokenCounter(Tokenizer.from_file(str(tiny_model_dir / "tokenizer.json")))
    normal = [
        rec(f"o-{i:02d}", f"What does Mochi do at {i} o'clock?", f"She naps near window {i}.")
        for i in range(30)
    ]
    huge = rec("o-huge", "Summarise the diary.", "Mochi slept. " * 400)
    long = rec("o-long", "Summarise the week.", "Mochi slept and ate. " * 20)
    tiny = rec("o-tiny", "Hi", "Yo", reasoning="Ok.")
    report = check_records([*normal, huge, long, tiny], counter, CheckArgs(max_tokens=1024))
    found = {f.record_ids[0]: f for f in report.of_code("length-outlier")}
    assert set(found) == {"o-huge", "o-long", "o-tiny"}
    assert found["o-huge"].severity == "warning" and found["o-huge"].details["tokens"] > 1024
    assert found["o-long"].severity == "info" and "unusually long" in found["o-long"].message
    assert found["o-tiny"].severity == "info" and "unusually short" in found["o-tiny"].message
    assert (
        report.tokens is not None and report.tokens["o-huge"] == found["o-huge"].details["tokens"]
    )
    # Without a tokenizer, lengths are not checked at all.
    assert "length-outlier" not in codes(check_records([*normal, huge]))


def test_json_round_trip_matches_the_report() -> None:
    records = [
        *CLEAN,
        rec("j-1", "麻糬几岁了？", "六岁。", language="zh"),
        rec("j-2", "麻糬几岁了？", "八岁。", language="zh"),
        rec("j-3", "What colour is Mochi?", "Brown.", category=None),
    ]
    report = check_records(records, dataset="猫")
    data = json.loads(json.dumps(report.to_json(), ensure_ascii=False))
    assert data["dataset"] == "猫"
    assert data["summary"]["records"] == len(records)
    assert data["summary"]["exit_code"] == 2
    assert data["summary"]["by_severity"] == {"error": 1, "warning": 1, "info": 0}
    assert data["summary"]["by_code"]["contradiction"] == {"findings": 1, "records": 2}
    assert [(f["severity"], f["code"], f["record_ids"]) for f in data["findings"]] == [
        ("error", "contradiction", ["j-1", "j-2"]),
        ("warning", "missing-category", ["j-3"]),
    ]


def test_findings_are_ordered_by_severity_then_code() -> None:
    records = [
        *CLEAN,
        rec("o-1", "What is X?", "", category=None),
        rec("o-2", "Q?", "A.", reasoning=None, language="xx-yy-zz"),
    ]
    report = check_records(records)
    keys = [(SEVERITIES.index(f.severity), list(CODES).index(f.code)) for f in report.findings]
    assert keys == sorted(keys)
    assert [f.severity for f in report.findings] == ["error", "warning", "warning", "info"]


def test_planted_contradictions_found_among_thousands() -> None:
    """3,000 records with 40 planted contradicting pairs and 40 exact copies: all found, and
    nothing else."""
    records = [
        rec(f"b-{i:05d}", f"Record {i}: what did Mochi do on day {i * 7919 % 100003}?", f"Nap {i}.")
        for i in range(3000)
    ]
    for k in range(40):
        source = records[k * 50]
        records.append(rec(f"x-{k:02d}", source.instruction, f"Something else {k}."))
        records.append(
            rec(f"y-{k:02d}", records[k * 50 + 1].instruction, records[k * 50 + 1].output)
        )
    report = check_records(records)
    contradictions = report.of_code("contradiction")
    assert sorted(f.record_ids for f in contradictions) == sorted(
        [f"b-{k * 50:05d}", f"x-{k:02d}"] for k in range(40)
    )
    assert len(report.of_code("exact-duplicate")) == 40
    assert set(codes(report)) == {"contradiction", "exact-duplicate"}
    assert report.seconds["duplicates"] < 10


def test_bad_settings_are_refused() -> None:
    with pytest.raises(BonsaiError, match="near-threshold"):
        CheckArgs(near_threshold=0)
    with pytest.raises(BonsaiError, match="max-tokens"):
        CheckArgs(max_tokens=0)


def test_sample_dataset_contradictions_are_in_unique_categories() -> None:
    if not SAMPLE.exists():
        pytest.skip("the sample dataset is not there yet")
    records = [
        Record.from_dict(json.loads(line)) for line in SAMPLE.read_text("utf-8").splitlines()
    ]
    report = check_records(records)
    assert "empty-field" not in codes(report)
    by_id = {r.id: r for r in records}
    for finding in report.contradictions:
        assert all(by_id[i].category in {"open_qa", "closed_qa", "classification", "translation"}
                   for i in finding.record_ids)  # fmt: skip
        outputs = {by_id[i].output for i in finding.record_ids}
        assert len(outputs) > 1


@pytest.mark.parametrize(
    ("field", "text", "severity"),
    [
        ("instruction", "\u200b", "error"),
        ("output", "\x00", "error"),
        ("output", "\u202e\u200f", "error"),
        ("input", "\u2060", "warning"),
        ("reasoning", "\u3164", "warning"),
    ],
)
def test_invisible_only_text_is_flagged(field: str, text: str, severity: str) -> None:
    """Records that got in before imports refused them (or from elsewhere) are still found."""
    record = rec("x", "What is it?", "A cat.")
    setattr(record, field, text)
    found = [f for f in check_records([record]).findings if f.code == "invisible-text"]
    assert [(f.severity, f.record_ids) for f in found] == [(severity, ["x"])]
    assert field in found[0].message and "U+" in found[0].message


def test_visible_text_in_any_script_is_not_flagged() -> None:
    records = [rec("a", "猫は?", "ねこ"), rec("b", "é", "\u0915\u093f"), rec("c", "1", "-")]
    assert not [f for f in check_records(records).findings if f.code == "invisible-text"]
