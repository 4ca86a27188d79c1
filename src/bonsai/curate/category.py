"""Suggest one of the seven categories for a record, with a confidence, from hand-written cues.

Each cue is a pattern (English, Japanese or Chinese) or a property of the record (it has an input
passage, its output is a list, its output is mostly questions) that adds weight to one category.
The weights are summed per category and turned into probabilities with a softmax, so the
confidence says how clearly one category won. Nothing is fitted by a program: every cue can be
read, and :attr:`CategorySuggestion.reasons` names the cues that decided a record. The cues and
weights were set by hand while reading the even-numbered half of the Dolly sample (and checking
that English and Japanese seed tasks agree); bench/annotate_accuracy.py reports the other half
of the Dolly sample separately, as the honest estimate.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from bonsai.curate.language import has_cjk, is_translation_request
from bonsai.records import CATEGORIES

PRIOR = {"open_qa": 1.0}
"""Weight every record starts with: a question with no other cue is an open question."""

SHARPNESS = 1.3
"""Softmax scale: higher makes confidences more extreme for the same scores."""

OUTPUT_CAP = 2000
"""Characters of the output examined: enough to see lists and questions, cheap on long answers."""

INSTRUCTION_CAP = 600
"""Characters of a long instruction examined (its start and its end, where the task usually is)."""


@dataclass(frozen=True)
class Cue:
    """Adds ``weight`` to ``category`` when ``pattern`` matches the lowercased instruction."""

    name: str
    category: str
    weight: float
    pattern: re.Pattern[str]
    triggers: tuple[str, ...] = ()
    """Substrings of which the text must contain one for ``pattern`` to match at all: a plain
    substring test skips the regex for most records (16k records x 20 patterns take seconds
    otherwise). Empty for a CJK cue, which runs only on text with CJK characters."""

    def matches(self, lowered: str, has_cjk: bool) -> bool:
        if self.triggers:
            if not any(t in lowered for t in self.triggers):
                return False
        elif not has_cjk:
            return False
        return self.pattern.search(lowered) is not None


def _cue(name: str, category: str, weight: float, pattern: str, triggers: str) -> Cue:
    """A Latin-script cue; ``triggers`` is "word|other words|..." (see :attr:`Cue.triggers`)."""
    # Patterns are written in lower case and matched against lowercased text: re.IGNORECASE
    # makes every one of them about twice as slow.
    return Cue(name, category, weight, re.compile(pattern), tuple(triggers.split("|")))


def _cjk_cue(name: str, category: str, weight: float, pattern: str) -> Cue:
    return Cue(name, category, weight, re.compile(pattern))


_NUMBER = r"(?:\d+|two|three|four|five|six|seven|eight|nine|ten|a few|several|some|many)"

INSTRUCTION_CUES: tuple[Cue, ...] = (
    # closed_qa: the answer comes from a given text
    _cue(
        "refers to a given text",
        "closed_qa",
        2.5,
        r"\b(?:this|the|following|given|above|below|provided|included|attached|reference)"
        r"\s+(?:\w+\s+)?(?:paragraph|passage|text|article|context|excerpt|document|reference"
        r"|information|story|email|review|transcript)s?\b"
        r"|\bbased on (?:the|this)\b|\baccording to (?:the|this)\b|\bfrom the (?:text|passage)\b",
        "paragraph|passage|text|article|context|excerpt|document|reference|information|story"
        "|email|review|transcript|based on|according to",
    ),
    _cue(
        "summarise or extract",
        "closed_qa",
        2.5,
        r"\bsummari[sz]\w*|\bsummary\b|\bextract\w*|\btl;?dr\b|\bparaphrase\b"
        r"|\bkey (?:points|facts)\b",
        "summar|extract|tl|paraphrase|key ",
    ),
    _cjk_cue(
        "given text (ja/zh)",
        "closed_qa",
        2.5,
        r"(?:以下|次|この|下記|上記)の(?:文章|文|段落|テキスト|記事|内容|説明|情報)|本文|要約|抽出|まとめ"
        r"|によると|に基づいて|根据|以下(?:段落|文章|内容|文字|信息)|这段|這段|总结|總結|摘要|提取|概括|文中",
    ),
    # classification: exactly one answer picked from given options
    _cue(
        "classify",
        "classification",
        3.5,
        r"\bclassif(?:y|ied|ies|ication)\b|\bcategori[sz]\w*|\b(?:sort|group|label|bucket)"
        r"\s+(?:these|the following|each|them|the items)\b",
        "classif|categori|sort|group|label|bucket",
    ),
    _cue(
        "which of these",
        "classification",
        2.5,
        r"\bidentify which\b|\bwhich (?:of|one of|ones? of) (?:these|the following|the below|those"
        r"|the list|them)\b|\bwhich (?:one|ones) (?:is|are)\b|\btell me (?:whether|if|which)\b"
        r"|\b(?:whether|if) (?:each|these|this|the following)\b|\bodd one out\b",
        "which|tell me|whether|if |odd one",
    ),
    _cue(
        "either X or Y",
        "classification",
        2.0,
        r"\b(?:is|are) (?:\w+\s+){0,6}(?:a|an)?\s*\w+ or (?:a|an)?\s*\w+\s*[?:]"
        r"|\beither\b.+\bor\b|\bwhich is (?:a|an|the)?\s*\w+(?: \w+)? or\b",
        "or",
    ),
    _cue(
        "sentiment or true/false",
        "classification",
        2.5,
        r"\bsentiment\b|\b(?:positive|negative) or (?:negative|positive|neutral)\b"
        r"|\btrue or false\b|\byes or no\b|\bspam or\b",
        "sentiment|positive or|negative or|true or|yes or|spam or",
    ),
    _cjk_cue(
        "classify (ja/zh)",
        "classification",
        3.0,
        r"分類|仕分け|分けて|カテゴリ|判定|ポジティブ|ネガティブ|当てはまる|該当する|属する|分类|归类|歸類"
        r"|属于|屬於|判断|判斷|正面还是负面|褒义|贬义",
    ),
    _cjk_cue(
        "whether (ja/zh)",
        "classification",
        2.5,
        r"かどうか|識別|判断して|[」」]か「|はい」か|真か偽|どれに属|是否|是不是|对还是错|真还是假",
    ),
    _cjk_cue("which one (ja/zh)", "classification", 1.5, r"どちら|どれ[がか]|哪个|哪一个|哪些是"),
    # brainstorming: several good answers
    _cue(
        "asks for a list",
        "brainstorming",
        2.5,
        r"\b(?:give|make|write|create|provide|generate|compile|come up with|share)\b"
        r".{0,25}\b(?:list|ideas?|suggestions?|ways|tips|examples|options|names|reasons)\b"
        r"|\b(?:list|name|suggest|recommend)\s+" + _NUMBER + r"\b"
        r"|^\s*(?:list|suggest|brainstorm|recommend)\b",
        "give|make|write|create|provide|generate|compile|come up|share|list|name|suggest"
        "|recommend|brainstorm",
    ),
    _cue(
        "ideas or tips",
        "brainstorming",
        2.0,
        r"\bideas?\b|\bbrainstorm\w*|\bsuggest(?:ions?)?\b|\btips\b|\bways to\b|\brecommend\w*"
        r"|\bwhat are (?:some|a few|good|the best|the top|different|lots of|ways|things)\b"
        r"|\bbest (?:ways|places|things)\b|\bwhat (?:should|can|could) (?:i|we) (?:do|bring|buy"
        r"|cook|make|eat|see|visit|get|pack)\b",
        "idea|brainstorm|suggest|tips|ways to|recommend|what |best ",
    ),
    _cjk_cue(
        "ideas (ja/zh)",
        "brainstorming",
        2.5,
        r"アイデア|アイディア|案を|挙げて|あげて|列挙|リスト|提案|おすすめ|お勧め|いくつか|ヒント"
        r"|方法を\d+|列举|列舉|列出|建议|建議|想法|点子|主意|推荐|推薦|一些|几个|幾個|几种",
    ),
    # creative: no notion of "the" answer
    _cue(
        "write a piece",
        "creative",
        3.5,
        r"\b(?:write|compose|create|draft|pen|make up|come up with|tell)\b.{0,30}"
        r"\b(?:poem|story|haiku|song|lyrics|limerick|essay|letter|speech|tweet|blog"
        r"|dialogue|dialog|joke|slogan|advertisement|ad|tagline|narrative|fable|tale|rap|sonnet"
        r"|screenplay|scene|toast|eulogy|monologue|riddle|pitch|description|paragraph|article|review)s?\b",
        "write|compose|create|draft|pen|make up|come up|tell",
    ),
    _cue(
        "a literary form",
        "creative",
        1.5,
        r"\b(?:poem|poetry|haiku|limerick|sonnet|fairy tale|short story|lyrics|fiction)\b",
        "poem|poetry|haiku|limerick|sonnet|fairy tale|short story|lyrics|fiction",
    ),
    _cue(
        "imagine",
        "creative",
        2.0,
        r"\b(?:imagine|pretend|role ?play|in the style of|what would happen if|what is it like"
        r"|make the case|persuade|convince)\b|\bas if you\b|\byou are an?\b",
        "imagine|pretend|role|in the style|what would|what is it like|make the case|persuade"
        "|convince|as if you|you are a",
    ),
    _cjk_cue(
        "write a piece (ja/zh)",
        "creative",
        3.5,
        r"詩|俳句|短歌|川柳|物語|小説|ストーリー|歌詞|作文|エッセイ|手紙|スピーチ|キャッチコピー|創作"
        r"|(?:ジョーク|ギャグ|シーン|レビュー|推薦状|紹介文|広告|台本|脚本|セリフ|祝辞|ツイート)を"
        r"(?:\S{0,6})(?:書|作|考え)"
        r"|诗|詩歌|故事|小说|小說|歌词|散文|写一[首篇个封段]|寫一[首篇個封段]",
    ),
    _cjk_cue("imagine (ja/zh)", "creative", 2.0, r"想像|もしも|なりきって|想象|假如|假设"),
    # question_to_question: answers a question with better questions
    _cue(
        "asks for questions",
        "question_to_question",
        3.5,
        r"\b(?:what|which) (?:\w+ )?questions?\b"
        r"|\b(?:ask|pose|suggest|generate|write|list) (?:me )?(?:\w+ )?"
        r"(?:better |good |sharper |follow-up |clarifying )?questions\b"
        r"|\bquestions? (?:should|could|can|to|would) (?:i|we|you) ask\b",
        "question",
    ),
    _cjk_cue(
        "asks for questions (ja/zh)",
        "question_to_question",
        3.0,
        r"(?:どんな|どのような|何を)質問|質問を(?:考え|挙げ|し|いくつか)|問いを|問い返|"
        r"(?:提出|提|问)(?:一些|几个)?(?:更好的)?问题|應該問|应该问|提问",
    ),
)
"""Cues read from the instruction (translation is asked separately, see below)."""

TRANSLATION_WEIGHT = 5.0
"""A request to translate: the pattern is shared with language detection, so the category and
the ``src-dst`` language always agree on what a translation is."""

_LIST_LINE = re.compile(r"^\s*(?:[-*•・●▪]|\d{1,2}[.)、．]|\(\d{1,2}\)|[a-z][.)])\s*\S", re.M)
_QUESTION_END = re.compile(r"[?？]")


def _sentences(text: str) -> list[str]:
    parts = re.split(r"(?<=[.!?。！？])\s*|\n+", text)
    return [p for p in (part.strip() for part in parts) if len(p) > 1]


@dataclass
class CategorySuggestion:
    """A suggested category and how sure the suggester is."""

    category: str
    confidence: float
    """Probability of ``category`` among the seven, in [0, 1]."""
    reasons: list[str] = field(default_factory=list)
    """The cues that added weight to ``category``."""
    scores: dict[str, float] = field(default_factory=dict)
    """Summed cue weights of every category, before the softmax."""


StructuralCue = Callable[[str, str, str], float]


def _passage_input(instruction: str, input: str, output: str) -> float:
    text = input.strip()
    if not text:
        return 0.0
    # A passage to read says closed_qa; a short item list to sort says little on its own.
    return 3.0 if len(text) >= 150 or len(_sentences(text)) >= 2 else 2.0


def _list_output(instruction: str, input: str, output: str) -> float:
    if input.strip():
        return 0.0
    lines = len(_LIST_LINE.findall(output))
    if lines >= 3:
        return 0.8
    items = re.split(r"[,、，;]", output)
    if len(items) >= 4 and len(output) < 300 and all(len(i.strip()) < 40 for i in items):
        return 0.8
    return 0.0


def _question_output(instruction: str, input: str, output: str) -> float:
    if output.count("?") + output.count("？") < 2:
        return 0.0
    sentences = _sentences(output)
    questions = sum(1 for s in sentences if _QUESTION_END.search(s[-2:]))
    if questions >= 2 and questions >= 0.6 * len(sentences):
        return 4.0
    return 0.0


def _picks_an_option(instruction: str, input: str, output: str) -> float:
    # "Is it positive or negative?" -> "Positive": the answer is one of the options offered.
    answer = output.strip().strip(".。!！\"'「」").lower()
    if not 2 <= len(answer) <= 30 or "\n" in answer:
        return 0.0
    option = re.compile(rf"(?<!\w){re.escape(answer)}(?!\w)")
    return 2.0 if option.search(instruction.lower()) else 0.0


_WH_START = re.compile(r"\s*(?:who|what|when|where|why|how|which|is|are|do|does|can)\b")
_CJK_QUESTION = re.compile(
    r"何|なぜ|どう|いつ|どこ|誰|ですか|ますか|什么|為什麼|为什么|怎么|怎麼|吗|嗎|呢|谁|哪里"
)


def _question_instruction(instruction: str, input: str, output: str) -> float:
    text = instruction.rstrip()
    if text.endswith(("?", "？")) or _WH_START.match(text.lower()):
        return 0.5
    return 0.5 if has_cjk(text) and _CJK_QUESTION.search(text) else 0.0


def _short_answer(instruction: str, input: str, output: str) -> float:
    return 0.3 if not input.strip() and 0 < len(output.strip()) < 60 else 0.0


STRUCTURAL_CUES: tuple[tuple[str, str, StructuralCue], ...] = (
    ("has an input passage", "closed_qa", _passage_input),
    ("output is a list", "brainstorming", _list_output),
    ("output is mostly questions", "question_to_question", _question_output),
    ("answer is one of the options", "classification", _picks_an_option),
    ("a question", "open_qa", _question_instruction),
    ("short factual answer", "open_qa", _short_answer),
)
"""Cues read from the shape of the record rather than its words."""


def category_scores(
    instruction: str, input: str, output: str
) -> tuple[dict[str, float], dict[str, list[str]]]:
    """Summed cue weights per category, and which cues fired for each."""
    scores = {name: PRIOR.get(name, 0.0) for name in CATEGORIES}
    fired: dict[str, list[str]] = {name: [] for name in CATEGORIES}
    output = output[:OUTPUT_CAP]
    if len(instruction) > INSTRUCTION_CAP:
        half = INSTRUCTION_CAP // 2
        instruction = f"{instruction[:half]}\n{instruction[-half:]}"
    lowered = instruction.lower()
    cjk = has_cjk(instruction)
    if is_translation_request(instruction):
        scores["translation"] += TRANSLATION_WEIGHT
        fired["translation"].append("asks to translate")
    for cue in INSTRUCTION_CUES:
        if cue.matches(lowered, cjk):
            scores[cue.category] += cue.weight
            fired[cue.category].append(cue.name)
    for name, category, measure in STRUCTURAL_CUES:
        weight = measure(instruction, input, output)
        if weight:
            scores[category] += weight
            fired[category].append(name)
    return scores, fired


def suggest_category(instruction: str, input: str = "", output: str = "") -> CategorySuggestion:
    """The most likely of the seven categories for a record, with its softmax probability."""
    scores, fired = category_scores(instruction, input, output)
    best = max(CATEGORIES, key=lambda name: scores[name])
    top = scores[best]
    total = sum(math.exp(SHARPNESS * (score - top)) for score in scores.values())
    confidence = 1.0 / total
    return CategorySuggestion(best, round(confidence, 4), fired[best], scores)
