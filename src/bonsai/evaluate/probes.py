"""Probe sets: small fixed questions asked of every model, so rounds can be compared.

A probe is a record-like dict: ``id``, ``instruction``, ``input``, ``output`` (the reference),
``category``, ``language`` and optionally ``accept`` (other acceptable answers). The built-in set
covers facts and capitals in ja/en/zh and J→E / E→J translation; a user adds their own JSONL file;
when the shared Alpaca seed tasks are present, their English/Japanese pairs become more
translation probes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bonsai.errors import BonsaiError
from bonsai.records import CATEGORIES, CREATIVE_CATEGORIES, normalise_category

Probe = dict[str, Any]

_FACTS: list[tuple[str, str, str, list[str]]] = [
    # (language, question, answer, also accepted)
    ("en", "What is the highest mountain in Japan?", "Mount Fuji", ["Fuji", "Fujisan"]),
    ("ja", "日本で一番高い山は何ですか？", "富士山", ["ふじさん"]),
    ("zh", "日本最高的山是什么？", "富士山", []),
    ("en", "What is the capital of France?", "Paris", []),
    ("ja", "フランスの首都はどこですか？", "パリ", []),
    ("zh", "法国的首都是哪里？", "巴黎", []),
    ("en", "What is the capital of Japan?", "Tokyo", []),
    ("ja", "日本の首都はどこですか？", "東京", []),
    ("zh", "中国的首都是哪里？", "北京", ["Beijing"]),
    ("en", "What is the capital of Italy?", "Rome", []),
    ("ja", "イタリアの首都はどこですか？", "ローマ", []),
    ("en", "How many legs does a cat have?", "Four", ["4"]),
    ("ja", "猫の足は何本ですか？", "4本", ["四本", "4"]),
    ("zh", "猫有几条腿？", "四条", ["4"]),
    ("en", "What is the largest ocean on Earth?", "The Pacific Ocean", ["Pacific"]),
    ("ja", "世界で一番大きい海は何ですか？", "太平洋", []),
    ("en", "What do cats usually drink?", "Water", []),
    ("en", "Which planet is known as the Red Planet?", "Mars", []),
    ("ja", "赤い惑星と呼ばれる惑星はどれですか？", "火星", []),
    ("zh", "哪个行星被称为红色星球？", "火星", []),
]

_CLASSIFY: list[tuple[str, str, str, str]] = [
    ("en", "Is a cat a mammal or a reptile?", "", "Mammal"),
    (
        "en",
        "Classify the sentiment of this review as positive or negative.",
        "My cat loves this toy and plays with it every day.",
        "Positive",
    ),
    ("ja", "次の動物は哺乳類ですか、爬虫類ですか？", "ヘビ", "爬虫類"),
]

_TRANSLATE: list[tuple[str, str, str]] = [
    # (direction, source, reference)
    ("ja-en", "猫に毎日新鮮な水をあげてください。", "Please give the cat fresh water every day."),
    ("ja-en", "今日は天気がいいです。", "The weather is nice today."),
    ("ja-en", "私の猫は六歳です。", "My cat is six years old."),
    ("ja-en", "駅はどこですか？", "Where is the station?"),
    ("en-ja", "Please give the cat fresh water every day.", "猫に毎日新鮮な水をあげてください。"),
    ("en-ja", "The weather is nice today.", "今日は天気がいいです。"),
    ("en-ja", "My cat is six years old.", "私の猫は六歳です。"),
    ("en-ja", "Where is the station?", "駅はどこですか？"),
]

_TRANSLATE_INSTRUCTION = {
    "ja-en": "Translate the following Japanese text into English.",
    "en-ja": "次の英語を日本語に翻訳してください。",
}


def builtin_probes() -> list[Probe]:
    probes: list[Probe] = []
    for i, (lang, question, answer, accept) in enumerate(_FACTS):
        probes.append(
            {
                "id": f"probe-fact-{i:02d}",
                "instruction": question,
                "input": "",
                "output": answer,
                "accept": accept,
                "category": "open_qa",
                "language": lang,
            }
        )
    for i, (lang, question, text, answer) in enumerate(_CLASSIFY):
        probes.append(
            {
                "id": f"probe-class-{i:02d}",
                "instruction": question,
                "input": text,
                "output": answer,
                "accept": [],
                "category": "classification",
                "language": lang,
            }
        )
    for i, (direction, source, reference) in enumerate(_TRANSLATE):
        probes.append(
            {
                "id": f"probe-tr-{i:02d}",
                "instruction": _TRANSLATE_INSTRUCTION[direction],
                "input": source,
                "output": reference,
                "accept": [],
                "category": "translation",
                "language": direction,
            }
        )
    return probes


def seed_translation_probes(data_dir: Path, limit: int = 20) -> list[Probe]:
    """J→E and E→J probes from the paired English/Japanese Alpaca seed tasks, if present."""
    en_path = data_dir / "alpaca-seed" / "seed_tasks.jsonl"
    ja_path = data_dir / "alpaca-seed" / "seed_tasks_jp_cleaned.jsonl"
    if not (en_path.is_file() and ja_path.is_file()):
        return []
    en = [json.loads(line) for line in en_path.read_text(encoding="utf-8").splitlines() if line]
    ja = [json.loads(line) for line in ja_path.read_text(encoding="utf-8").splitlines() if line]
    pairs = [
        (e["instruction"], j["instruction"])
        for e, j in zip(en, ja, strict=False)
        if e["id"] == j["id"] and len(e["instruction"]) <= 160
    ][:limit]
    probes: list[Probe] = []
    for i, (english, japanese) in enumerate(pairs):
        probes.append(
            {
                "id": f"probe-seed-je-{i:02d}",
                "instruction": _TRANSLATE_INSTRUCTION["ja-en"],
                "input": japanese,
                "output": english,
                "accept": [],
                "category": "translation",
                "language": "ja-en",
            }
        )
        probes.append(
            {
                "id": f"probe-seed-ej-{i:02d}",
                "instruction": _TRANSLATE_INSTRUCTION["en-ja"],
                "input": english,
                "output": japanese,
                "accept": [],
                "category": "translation",
                "language": "en-ja",
            }
        )
    return probes


def _probe(item: dict[str, Any], path: Path, number: int) -> Probe:
    """One probe of a file; held-out questions (``question``, ``accepted``) read as probes."""
    accepted = [str(a) for a in item.get("accepted") or [] if str(a).strip()]
    instruction = str(item.get("instruction") or item.get("question") or "")
    output = str(item.get("output") or (accepted[0] if accepted else ""))
    accept = [str(a) for a in item.get("accept") or []] + accepted
    category = normalise_category(str(item.get("category") or ""))
    if not instruction.strip():
        raise BonsaiError("missing or empty", file=path, line=number, field="instruction")
    if not str(item.get("category") or "").strip():
        raise BonsaiError("missing or empty", file=path, line=number, field="category")
    if category is None:
        raise BonsaiError(
            f"unknown category '{item['category']}'",
            file=path,
            line=number,
            field="category",
            hint=f"use one of: {', '.join(CATEGORIES)}",
        )
    if not output.strip() and category not in CREATIVE_CATEGORIES:
        raise BonsaiError("missing or empty", file=path, line=number, field="output")
    return {
        "id": str(item.get("id") or f"{path.stem}-{number}"),
        "instruction": instruction,
        "input": str(item.get("input") or ""),
        "output": output,
        "accept": [a for a in dict.fromkeys(accept) if a != output],
        "category": category,
        "language": item.get("language"),
        "target_language": item.get("target_language") or None,
    }


def load_probe_file(path: Path) -> list[Probe]:
    """A user's probes: JSONL or a JSON array of records with instruction, output, category
    (and optionally id, input, language, accept: other accepted answers, target_language: the
    language a translation must be in). A held-out question file's ``question`` and
    ``accepted`` (the first is the reference) are read too; question_to_question, creative and
    brainstorming probes need no output."""
    if not path.is_file():
        raise BonsaiError("probe file does not exist", file=path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise BonsaiError(f"not UTF-8 (byte {exc.start})", file=path) from None
    items: list[tuple[int, Any]] = []
    try:
        if text.lstrip().startswith("["):
            items = list(enumerate(json.loads(text), start=1))
        else:
            for number, line in enumerate(text.splitlines(), start=1):
                if line.strip():
                    items.append((number, json.loads(line)))
    except json.JSONDecodeError as exc:
        raise BonsaiError(
            f"invalid JSON: {exc.msg}", file=path, line=exc.lineno, column=exc.colno
        ) from None
    if not items:
        raise BonsaiError("probe file has no probes", file=path)
    probes: list[Probe] = []
    for number, item in items:
        if not isinstance(item, dict):
            raise BonsaiError("each probe must be a JSON object", file=path, line=number)
        probes.append(_probe(item, path, number))
    return probes
