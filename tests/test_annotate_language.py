"""Language detection: short texts in many languages, Han-only text, translation pairs."""

from __future__ import annotations

import pytest

from bonsai.curate.language import (
    LanguageDetector,
    default_detector,
    english_shortcut,
    is_translation_request,
    named_source,
    named_target,
    record_languages,
    script_language,
    source_text,
)
from bonsai.records import Record

SHORT_TEXTS = {
    "en": [
        "What is the capital of France?",
        "Give me three ideas for a birthday party.",
        "Hello there",
        "Summarize this article in one sentence.",
        "Why is the sky blue?",
    ],
    "ja": [
        "猫の爪を切る頻度は？",
        "今日はいい天気ですね。",
        "東京タワーの高さを教えて",
        "富士山は日本で一番高い山です。",
        "カレーライスの作り方",
    ],
    "zh": [
        "今天天气很好。",
        "请列举五种水果。",
        "中国的首都是哪里？",
        "我喜欢吃苹果",
        "这只猫很可爱",
    ],
    "ko": [
        "오늘 날씨가 좋네요.",
        "한국의 수도는 어디입니까?",
        "고양이를 키우고 싶어요",
        "감사합니다",
        "김치 만드는 법을 알려주세요",
    ],
    "fr": [
        "Quelle est la capitale de la France ?",
        "Je voudrais un café, s'il vous plaît.",
        "Pourquoi le ciel est-il bleu ?",
        "Donne-moi trois idées de cadeaux.",
        "Bonjour tout le monde",
    ],
    "de": [
        "Wie spät ist es?",
        "Ich möchte ein Bier bestellen.",
        "Warum ist der Himmel blau?",
        "Nenne mir drei Hauptstädte in Europa.",
        "Guten Morgen, wie geht es dir?",
    ],
    "es": [
        "¿Dónde está la biblioteca?",
        "Me gusta mucho la comida mexicana.",
        "¿Por qué el cielo es azul?",
        "Dame tres ideas para una fiesta.",
        "Buenos días a todos",
    ],
}

# Sentences in other Latin-script languages that share short words with English ("in", "is",
# "was", "will", "for", "me", "do", "also"): the English shortcut must never claim them.
NOT_ENGLISH = [
    "Ik heb een kat en een hond, en mijn zus is ook thuis.",
    "Was ist das für ein Auto? Ich will es auch haben.",
    "Je ne sais pas si on va au cinéma ce soir ou demain.",
    "El perro de mi vecino es muy grande y come mucho.",
    "Il gatto è sul tavolo e il cane dorme in giardino.",
    "Eu gosto de ler livros no parque do meu bairro.",
    "Jag har en katt och en hund som bor hos mig.",
    "Saya suka makan nasi goreng di rumah ibu saya.",
]


@pytest.mark.parametrize(
    ("expected", "text"), [(lang, text) for lang, texts in SHORT_TEXTS.items() for text in texts]
)
def test_short_texts(expected: str, text: str) -> None:
    assert default_detector().detect(text) == expected


def test_batch_matches_single_calls() -> None:
    from bonsai.curate.language import TextQuery

    texts = [t for texts in SHORT_TEXTS.values() for t in texts]
    batch = default_detector().detect_many([TextQuery(t) for t in texts])
    assert batch == [default_detector().detect(t) for t in texts]


def test_english_shortcut_only_claims_english() -> None:
    assert english_shortcut("What is the difference between a road bike and a mountain bike?")
    assert english_shortcut("Jana is 5 inches taller than Kelly, and Kelly is 3 inches shorter.")
    for text in NOT_ENGLISH:
        assert not english_shortcut(text), text
    assert not english_shortcut("Qui était Clovis? Clovis Ier, né vers 466, est roi des Francs.")


def test_han_only_text_is_ambiguous() -> None:
    assert script_language("东京大学") == "zh"
    assert script_language("東京大学", han_hint="ja") == "ja"
    assert script_language("東京大学", han_hint="zh") == "zh"
    # kana anywhere decides for Japanese; hangul for Korean
    assert script_language("東京大学の場所") == "ja"
    assert script_language("서울대학교 大學") == "ko"
    # a Latin text with one Japanese word is not Japanese
    assert script_language("The word こんにちは means hello in English, used all day long") is None


def test_han_only_instruction_takes_kana_from_the_rest_of_the_record() -> None:
    records = [
        Record("a", "東京大学", "", "東京大学は日本の大学です。"),
        Record("b", "东京大学", "", "东京大学是日本的一所大学。"),
        Record("c", "東京大学", "", ""),
    ]
    assert record_languages(records, [None] * 3) == ["ja", "zh", "zh"]


def test_cjk_instruction_decides_over_untranslated_output() -> None:
    record = Record("a", "次のコードのバグを修正してください。", "", "def f(x):\n    return x + 1")
    assert record_languages([record], [None]) == ["ja"]
    record = Record("b", "Give me a list of the communes in Barolo DOCG", "", "- La Morra\n- Roddi")
    assert record_languages([record], [None]) == ["en"]


@pytest.mark.parametrize(
    ("instruction", "input", "output", "expected"),
    [
        ("Translate 'merci beaucoup' into English.", "", "Thank you very much.", "fr-en"),
        ("次の文を英語に訳してください。", "今日は晴れです。", "It is sunny today.", "ja-en"),
        ("把这句话翻译成英文：我喜欢猫。", "", "I like cats.", "zh-en"),
        ("「ありがとう」を中国語に訳して", "", "谢谢", "ja-zh"),
        ("Translate to Japanese: Good morning", "", "おはようございます", "en-ja"),
        ("次の中国語を日本語に訳して", "我爱你", "愛してる", "zh-ja"),
        ("Translate into French.", "Where is the station?", "Où est la gare ?", "en-fr"),
        ("Übersetze ins Englische: Guten Morgen", "", "Good morning", "de-en"),
    ],
)
def test_translation_records_name_both_sides(
    instruction: str, input: str, output: str, expected: str
) -> None:
    record = Record("t", instruction, input, output)
    assert is_translation_request(instruction)
    assert record_languages([record], ["translation"]) == [expected]


def test_translation_helpers() -> None:
    assert named_target("Translate this into Japanese") == "ja"
    assert named_target("英語に訳して") == "en"
    assert named_target("把这句话翻译成英文") == "en"
    assert named_target("この文を英訳して") == "en"
    assert named_source("Translate from German to English") == "de"
    assert named_source("次の中国語を日本語に訳して") == "zh"
    assert source_text(Record("a", "Translate 「猫が好き」 into English", "", "")) == "猫が好き"
    assert source_text(Record("a", "Translate: Guten Tag", "", "")) == "Guten Tag"
    assert source_text(Record("a", "Translate", "Bonjour", "")) == "Bonjour"


@pytest.mark.parametrize(
    "text",
    [
        "What is the capital of Japan?",
        "Write a poem about translation errors in old maps",
        "日本の首都はどこですか？",
        "Summarize the passage below.",
        "英語の勉強法を教えて",
    ],
)
def test_not_translation_requests(text: str) -> None:
    assert not is_translation_request(text)


@pytest.mark.parametrize(
    "text",
    [
        "Translate the sentence below.",
        "Give me the translation of 'gato' in English.",
        "How do you say 'cat' in Japanese?",
        "この文章を英語に翻訳してください。",
        "把下面的句子翻译成日语。",
        "이 문장을 영어로 번역해 주세요.",
        "Traduis cette phrase en anglais.",
    ],
)
def test_translation_requests(text: str) -> None:
    assert is_translation_request(text)


def test_no_letters_gives_none() -> None:
    assert default_detector().detect("12345 + 678 = ?") is None


def test_low_accuracy_mode_builds_and_detects() -> None:
    detector = LanguageDetector(low_accuracy=True)
    assert detector.detect("Quelle est la capitale de la France et pourquoi Paris ?") == "fr"
    assert detector.stats["lingua"] == 1
