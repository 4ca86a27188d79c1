"""Category suggestions: English, Japanese and Chinese records, confidence, the cue gates."""

from __future__ import annotations

import json

import pytest

from bonsai.curate.category import INSTRUCTION_CUES, suggest_category
from bonsai.records import CATEGORIES
from tests.conftest import SHARED_DATA

PASSAGE = (
    "The Shiba Inu is a breed of hunting dog from Japan. A small-to-medium breed, it is the "
    "smallest of the six original and distinct spitz breeds of dog native to Japan."
)
PASSAGE_JA = "柴犬は日本原産の犬種である。日本の天然記念物に指定された日本犬6種のうちの1つ。"

EXAMPLES: list[tuple[str, str, str, str]] = [
    # (expected, instruction, input, output)
    ("open_qa", "What is the capital of Australia?", "", "Canberra."),
    ("open_qa", "Why do cats purr?", "", "Cats purr when content, and also to soothe themselves."),
    ("open_qa", "日本で一番高い山は何ですか？", "", "富士山です。"),
    ("open_qa", "为什么天空是蓝色的？", "", "因为大气散射蓝光。"),
    ("closed_qa", "Where does the Shiba Inu come from?", PASSAGE, "Japan."),
    ("closed_qa", "Summarize the paragraph in one sentence.", PASSAGE, "A small Japanese dog."),
    ("closed_qa", "次の文章を一文で要約してください。", PASSAGE_JA, "柴犬は日本の犬種。"),
    ("closed_qa", "根据以下段落，柴犬来自哪里？", PASSAGE_JA, "日本。"),
    (
        "classification",
        "Classify each of the following as a fruit or a vegetable: apple, carrot, pear",
        "",
        "apple - fruit, carrot - vegetable, pear - fruit",
    ),
    ("classification", "Which of these are mammals: shark, whale, trout?", "", "The whale."),
    (
        "classification",
        "Is the sentiment of this review positive or negative?",
        "I loved it.",
        "Positive",
    ),
    (
        "classification",
        "次の動物を哺乳類と魚類に分類してください：サメ、クジラ",
        "",
        "クジラは哺乳類",
    ),
    ("classification", "判断下面的评论是正面还是负面：很好吃！", "", "正面"),
    (
        "brainstorming",
        "Give me a list of ideas for a rainy weekend.",
        "",
        "- Bake bread\n- Read a novel\n- Visit a museum",
    ),
    ("brainstorming", "What are some good names for a black cat?", "", "Shadow, Onyx, Salem"),
    ("brainstorming", "猫と遊ぶアイデアを5つ挙げてください。", "", "1. 猫じゃらし\n2. 段ボール箱"),
    ("brainstorming", "请列举五个周末活动的建议。", "", "1. 爬山\n2. 看电影"),
    (
        "creative",
        "Write a short poem about autumn leaves.",
        "",
        "Red and gold they fall,\nwhispering to the ground.",
    ),
    ("creative", "Imagine you are a cat and describe your morning.", "", "I wake in a sunbeam."),
    ("creative", "秋についての俳句を作ってください。", "", "柿食えば 鐘が鳴るなり 法隆寺"),
    ("creative", "写一首关于月亮的诗。", "", "床前明月光，疑是地上霜。"),
    ("translation", "Translate into Japanese: Good morning", "", "おはようございます"),
    ("translation", "次の文を英語に訳してください。", "猫が好きです。", "I like cats."),
    ("translation", "把这句话翻译成英文：我喜欢猫。", "", "I like cats."),
    (
        "question_to_question",
        "My cat stopped eating. What should I do?",
        "",
        "How long has it been since she last ate? Is she drinking water? "
        "Has anything changed at home recently?",
    ),
    (
        "question_to_question",
        "What questions should I ask before adopting a dog?",
        "",
        "How much time do I have each day for walks?",
    ),
    (
        "question_to_question",
        "猫がご飯を食べません。",
        "",
        "いつから食べていませんか？水は飲んでいますか？最近、家で何か変わりましたか？",
    ),
]


@pytest.mark.parametrize(("expected", "instruction", "input", "output"), EXAMPLES)
def test_examples(expected: str, instruction: str, input: str, output: str) -> None:
    suggestion = suggest_category(instruction, input, output)
    assert suggestion.category == expected, suggestion
    assert suggestion.reasons, "a suggestion names the cues that decided it"


def test_confidence_is_a_probability_and_ranks_clear_cases_higher() -> None:
    for _, instruction, input, output in EXAMPLES:
        suggestion = suggest_category(instruction, input, output)
        assert 0.0 <= suggestion.confidence <= 1.0
        assert suggestion.category in CATEGORIES
    clear = suggest_category("Translate into French: good night", "", "Bonne nuit")
    vague = suggest_category("Pluto", "", "A dwarf planet.")
    assert clear.confidence > 0.9
    assert vague.confidence < 0.6
    assert suggest_category("", "", "").category in CATEGORIES


def _instructions() -> list[str]:
    texts = [e[1] for e in EXAMPLES]
    dolly = SHARED_DATA / "dolly" / "dolly-sample.jsonl"
    if dolly.exists():
        texts += [json.loads(line)["instruction"] for line in dolly.open(encoding="utf-8")]
    for name in ("seed_tasks.jsonl", "seed_tasks_jp_cleaned.jsonl"):
        path = SHARED_DATA / "alpaca-seed" / name
        if path.exists():
            texts += [json.loads(line)["instruction"] for line in path.open(encoding="utf-8")]
    return texts


def test_trigger_gates_never_change_a_match() -> None:
    """The cheap substring gate in front of each pattern must be a true necessary condition."""
    checked = 0
    for text in _instructions():
        lowered = text.lower()
        for cue in INSTRUCTION_CUES:
            if cue.triggers and cue.pattern.search(lowered):
                checked += 1
                assert any(t in lowered for t in cue.triggers), (cue.name, text)
            if not cue.triggers and cue.pattern.search(lowered):
                assert cue.matches(lowered, has_cjk=True)
    assert checked > 10
