import json

import pytest

from bonsai.evaluate.metrics import (
    bootstrap,
    chrf,
    contains_match,
    copies_notes,
    copies_prompt,
    distinct_n,
    exact_match,
    is_looping,
    normalise,
    paired_bootstrap_delta,
    question_share,
    reads_back,
    repeated_line_ratio,
)


def test_normalise_width_case_punctuation() -> None:
    assert normalise("ＴＯＫＹＯ！") == normalise("tokyo")
    assert normalise("富士山。") == normalise("富士山")
    assert exact_match("Mount Fuji.", "mount fuji")
    assert not exact_match("Mount Fuji", "Mount Everest")
    assert not exact_match("", "")


def test_contains_match() -> None:
    assert contains_match("日本で一番高い山は富士山です。", "富士山")
    assert contains_match("The answer is Paris, of course.", "Paris")
    assert not contains_match("The answer is Lyon.", "Paris")


def test_chrf_orders_translations() -> None:
    ref = ["Please give the cat fresh water every day."]
    good = chrf(["Please give the cat fresh water every day."], ref)
    close = chrf(["Give the cat fresh water daily."], ref)
    bad = chrf(["The weather is nice."], ref)
    assert good == pytest.approx(100.0)
    assert good > close > bad


def test_loop_detection_on_the_base_models_failure() -> None:
    loop = "富士山は、日本で一番高い山です。" * 4
    assert is_looping(loop)
    assert is_looping("the cat the cat the cat the cat the cat sat")
    assert not is_looping("Mochi eats wet food twice a day and dry food at noon.")
    assert repeated_line_ratio("a\nb\na\na") == pytest.approx(0.5)
    assert repeated_line_ratio("One line only.") == 0.0


def test_distinct_n_and_questions() -> None:
    assert distinct_n(["a b c d"], 2) == 1.0
    assert distinct_n(["a b a b a b"], 2) < 0.5
    assert distinct_n(["猫が好き"], 2) == 1.0
    assert question_share("Is she eating? How much does she weigh? Good.") == pytest.approx(2 / 3)
    assert question_share("ご飯は食べていますか？体重は？") == 1.0


def test_bootstrap_intervals() -> None:
    assert bootstrap([1.0, 0.0]) is None
    interval = bootstrap([1.0, 0.0] * 20)
    assert interval is not None
    assert interval.low < 0.5 < interval.high
    delta = paired_bootstrap_delta([0.0] * 20, [1.0] * 20)
    assert delta is not None and delta.low == delta.high == 1.0


def test_builtin_probes_cover_languages_and_directions() -> None:
    from bonsai.evaluate.probes import builtin_probes

    probes = builtin_probes()
    assert {p["language"] for p in probes} >= {"en", "ja", "zh", "ja-en", "en-ja"}
    assert len({p["id"] for p in probes}) == len(probes)


def test_probe_file_errors(tmp_path) -> None:
    from bonsai.errors import BonsaiError
    from bonsai.evaluate.probes import load_probe_file

    bad = tmp_path / "p.jsonl"
    bad.write_text(
        '{"instruction": "Q", "output": "A", "category": "open_qa"}\n'
        '{"instruction": "Q2", "output": "A2", "category": "poetry"}\n',
        encoding="utf-8",
    )
    with pytest.raises(BonsaiError) as info:
        load_probe_file(bad)
    assert info.value.line == 2 and info.value.field == "category"
    assert "poetry" in str(info.value)
    bad.write_text('{"instruction": "Q"\n', encoding="utf-8")
    with pytest.raises(BonsaiError, match="invalid JSON"):
        load_probe_file(bad)


def test_held_out_questions_read_as_probes(tmp_path) -> None:
    from bonsai.errors import BonsaiError
    from bonsai.evaluate.probes import load_probe_file

    path = tmp_path / "questions.jsonl"
    rows = [
        {"id": "q1", "category": "open_qa", "question": "Which shelter?",
         "accepted": ["Hidamari", "ひだまり"], "source": "notes/mochi.md"},
        {"id": "q2", "category": "translation", "question": "英語に訳してください：猫が寝ている。",
         "accepted": ["The cat is sleeping."], "target_language": "en"},
        {"id": "q3", "category": "question_to_question", "question": "Should I get a second cat?"},
    ]  # fmt: skip
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    facts, translation, q2q = load_probe_file(path)
    assert facts["instruction"] == "Which shelter?" and facts["output"] == "Hidamari"
    assert facts["accept"] == ["ひだまり"]
    assert translation["target_language"] == "en" and q2q["output"] == ""
    path.write_text('{"question": "Which shelter?", "category": "open_qa"}\n', encoding="utf-8")
    with pytest.raises(BonsaiError) as info:
        load_probe_file(path)
    assert info.value.field == "output" and info.value.line == 1


def test_seed_translation_probes_when_present() -> None:
    from conftest import SHARED_DATA

    from bonsai.evaluate.probes import seed_translation_probes

    if not (SHARED_DATA / "alpaca-seed").exists():
        pytest.skip("shared data not present")
    probes = seed_translation_probes(SHARED_DATA, limit=5)
    assert len(probes) == 10
    assert {p["language"] for p in probes} == {"ja-en", "en-ja"}


def test_facts_recall_ignores_width_case_spacing_but_not_decimal_points() -> None:
    from bonsai.evaluate.metrics import compact, recalls

    assert compact("4.2 kg") == compact("４．２ｋｇ") == compact("4.2kg")
    assert compact("4.2") != compact("42")
    assert recalls("She weighs ４．２ｋｇ now.", ["4.2 kg"])
    assert not recalls("She weighs 42 kg.", ["4.2 kg"])
    assert recalls("もちは「ひだまり」から来ました。", ["Hidamari", "ひだまり"])
    assert not recalls("", ["Paris"]) and not recalls("Paris", [""])


def test_a_label_is_the_whole_reply_or_its_first_part() -> None:
    from bonsai.evaluate.metrics import gives_label

    assert gives_label("Positive.", ["positive"])
    assert gives_label("Positive, because she plays with it every day.", ["Positive"])
    assert gives_label("爬虫類です。", ["爬虫類です"])
    assert gives_label("爬虫類。ヘビは…", ["爬虫類"])
    assert not gives_label("It is not positive.", ["Positive"])
    assert not gives_label("", ["Positive"])


def test_questions_are_counted() -> None:
    from bonsai.evaluate.metrics import question_count

    assert question_count("Since when? Is she drinking more? I see.") == 2
    assert question_count("いつからですか？水は飲んでいますか。") == 2
    assert question_count("She should see a vet.") == 0


VISIT = "獣医さんの診察中、もちはずっとベッドの下にいました。先生が帰ると、すぐに出てきました。"


def test_a_reply_that_copies_the_prompt_is_told_from_an_answer() -> None:
    assert copies_notes("[1] Care log > Weight\nShe weighs 4.2 kg.")
    assert not copies_notes("She weighs 4.2 kg [1].")
    assert reads_back(VISIT, VISIT)
    assert reads_back("答え：" + VISIT[:30], VISIT)
    assert not reads_back("ベッドの下です。", VISIT)
    assert not reads_back("4.2kg", "4.2kgです")  # too short a text to read back
    assert copies_prompt("[1] 通院記録\nベッドの下", "") and copies_prompt(VISIT, VISIT)
    assert not copies_prompt("ベッドの下にいました。", VISIT)
