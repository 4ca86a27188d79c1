"""Language detection for records: script rules where they are certain, lingua for the rest.

Most records are decided without a statistical model: Japanese kana, Korean hangul and Chinese
characters say the language by themselves, and plain-ASCII text dense with English function words
is English. What is left (short texts, other Latin-script languages, Cyrillic, Arabic, ...) goes to
one lingua detector, built once and lazily, restricted to :data:`LANGUAGES`, in one batch call.

Codes are ISO 639-1 (``ja``, ``en``, ``zh``, ...). A translation record is ``src-dst``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bonsai.records import Record
from bonsai.util.chars import HAN, HANGUL, KANA_LETTERS, LANGUAGE_CJK

if TYPE_CHECKING:  # lingua is imported only when a text actually needs it
    from lingua import LanguageDetector as _LinguaDetector

LANGUAGES: tuple[str, ...] = (
    "en", "ja", "zh", "ko", "fr", "de", "es", "it", "pt", "nl", "ru",
    "uk", "pl", "sv", "tr", "ar", "fa", "hi", "vi", "id", "th",
)  # fmt: skip
"""The languages lingua chooses among: fewer candidates is both faster and more accurate."""

TEXT_CAP = 240
"""Characters of each field passed to detection; longer text adds time, not accuracy."""

LINGUA_CAP = 2 * TEXT_CAP
"""Characters of one text that rules and lingua look at."""

_KANA = re.compile(f"[{KANA_LETTERS}]")
_HAN = re.compile(f"[{HAN}]")
_HANGUL = re.compile(f"[{HANGUL}]")
_CJK = re.compile(f"[{LANGUAGE_CJK}]")
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")
_NON_ASCII_LETTER = re.compile(r"[^\W\d_A-Za-z]")
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


# English words that are not (or very rarely) words of other Latin-script languages; "was",
# "will", "also" (German), "we", "had" (Dutch), "for", "just" (Nordic), "my" (Polish), "he"
# (Spanish) and "or" (French) are not among them, though they count towards density below;
# nor are "generate", "create", "state" (Italian), "describe" (Spanish), "name" (German) or
# "question" (French), common as they are in English instructions.
_EN_WORDS = _wordset(
    """the and of what which who whom whose how why where when this that these those with from
    you your are were been have has does did can would should could there their they them it its
    it's about not our she his write between than then into some each other most such only very
    after before because while being list tell identify following using given please explain
    sentence paragraph summarize summarise rewrite answer calculate example people something
    without every whether born located famous first world country city"""
)
_EN_COMMON = _wordset(
    """a an in is to on be as at by if do so no up we was will for or he her my me us also had
    just over under more any give all"""
)


CJK_WEIGHT = 2.5
"""Latin letters one CJK character is worth when weighing scripts (roughly, per word)."""


def _script_counts(text: str) -> tuple[int, int, int, int]:
    return (
        len(_KANA.findall(text)),
        len(_HAN.findall(text)),
        len(_HANGUL.findall(text)),
        len(_LATIN.findall(text)),
    )


def has_cjk(text: str) -> bool:
    """True if ``text`` has any kana, Han or hangul character."""
    return _CJK.search(text) is not None


def has_kana(text: str) -> bool:
    """True if ``text`` has any hiragana or katakana (only Japanese writes them)."""
    return _KANA.search(text) is not None


def script_language(text: str, han_hint: str | None = None) -> str | None:
    """ja/zh/ko when CJK script dominates ``text``; None when the script does not decide.

    Han characters alone are shared by Chinese and Japanese: ``han_hint`` (for example ``ja``
    when the record has kana elsewhere) breaks the tie, and Chinese is the default.
    """
    if _CJK.search(text) is None:  # the common case, decided by one scan
        return None
    kana, han, hangul, latin = _script_counts(text)
    cjk = kana + han + hangul
    if cjk == 0 or cjk * CJK_WEIGHT < latin:
        return None
    if hangul and hangul >= kana:
        return "ko"
    # A Chinese text may quote a Japanese name in kana; Japanese prose is a third kana or more.
    if kana and kana * 20 >= han:
        return "ja"
    if han_hint in ("ja", "zh"):
        return han_hint
    return "zh"


def english_shortcut(text: str) -> bool:
    """True when ``text`` is certainly English: no non-ASCII letters, dense in English words."""
    if _NON_ASCII_LETTER.search(text):
        return False
    words = _WORD.findall(text.lower())
    if len(words) < 4:
        return False
    distinct = {w for w in words if w in _EN_WORDS}
    common = sum(1 for w in words if w in _EN_WORDS or w in _EN_COMMON)
    return len(distinct) >= 2 and common >= 0.25 * len(words)


@dataclass
class TextQuery:
    """One text whose language is wanted, with what the rest of its record says."""

    text: str
    han_hint: str | None = None
    """'ja' or 'zh' to decide text written only in Han characters; None means Chinese."""


PARALLEL_MIN_TEXTS = 100
"""From this many texts on, lingua detects them on all CPU cores, once the Latin-script models
are loaded (see ``LanguageDetector._model``). Fewer are detected one by one, which loads only
the models they need, each once, and takes well under a second."""

_WARM_TEXT = "ok ja si oui nein tak evet hallo"
"""Plain ASCII, so every Latin-script candidate is scored; "hallo" has the five letters of a
5-gram."""


class LanguageDetector:
    """Detects languages of many texts at once; the lingua model is built on first need."""

    def __init__(self, low_accuracy: bool = False, languages: Sequence[str] = LANGUAGES) -> None:
        self.low_accuracy = low_accuracy
        self.languages = tuple(languages)
        self._lingua: _LinguaDetector | None = None
        self._warm = False
        self._lock = threading.Lock()
        self.stats = {"script": 0, "english": 0, "lingua": 0, "none": 0}
        """How many texts each path decided: shows how often the statistical model ran."""

    def _model(self, warm: bool = False) -> _LinguaDetector:
        # Built on first need, not ahead in a background thread: lingua (2.1) holds the GIL
        # while it loads its models, so such a thread stalls the rules instead of overlapping.
        with self._lock:
            if self._lingua is None:
                from lingua import IsoCode639_1, LanguageDetectorBuilder

                codes = [getattr(IsoCode639_1, code.upper()) for code in self.languages]
                builder = LanguageDetectorBuilder.from_iso_codes_639_1(*codes)
                if self.low_accuracy:
                    builder = builder.with_low_accuracy_mode()
                self._lingua = builder.build()
            if warm and not self._warm:
                # lingua loads a language's n-gram models on first use, and a parallel batch
                # loads a model once in each thread that needs it. One plain Latin-script text
                # loads all the Latin-script ones first, where most undecided text is; it needs
                # a word of five letters, as a short text is scored with 1- to 5-grams
                # (measured on 16k records: 3.9 s CPU and 320 MB, against 6.3 s and 395 MB
                # when the batch loaded them).
                self._lingua.detect_language_of(_WARM_TEXT)
                self._warm = True
            return self._lingua

    def detect(self, text: str, han_hint: str | None = None) -> str | None:
        """The language of one text (ISO 639-1), or None when it has no letters to go on."""
        return self.detect_many([TextQuery(text, han_hint)])[0]

    def detect_many(self, queries: Sequence[TextQuery]) -> list[str | None]:
        """Languages of many texts: rules first, then one lingua batch for the undecided."""
        results: list[str | None] = []
        pending: list[int] = []
        for query in queries:
            decided, language = self.by_rules(query)
            if not decided:
                pending.append(len(results))
            results.append(language)
        for i, language in zip(
            pending, self.by_model([queries[i].text for i in pending]), strict=True
        ):
            results[i] = language
        return results

    def by_rules(self, query: TextQuery) -> tuple[bool, str | None]:
        """(True, language) when script or the English shortcut decides; (False, None) if not."""
        text = query.text[:LINGUA_CAP]
        if not any(ch.isalpha() for ch in text):
            self.stats["none"] += 1
            return True, None
        by_script = script_language(text, query.han_hint)
        if by_script is not None:
            self.stats["script"] += 1
            return True, by_script
        if english_shortcut(text):
            self.stats["english"] += 1
            return True, "en"
        return False, None

    def by_model(self, texts: Sequence[str]) -> list[str | None]:
        """Languages of ``texts`` by lingua: a large batch in parallel over the CPU cores."""
        if not texts:
            return []
        capped = [text[:LINGUA_CAP] for text in texts]
        distinct = list(dict.fromkeys(capped))  # copies of a record share their texts
        found: list[Any]
        if len(distinct) >= PARALLEL_MIN_TEXTS:
            found = self._model(warm=True).detect_languages_in_parallel_of(distinct)
        else:
            model = self._model()
            found = [model.detect_language_of(text) for text in distinct]
        by_text = {
            text: language.iso_code_639_1.name.lower() if language else None
            for text, language in zip(distinct, found, strict=True)
        }
        languages = [by_text[text] for text in capped]
        self.stats["lingua"] += sum(language is not None for language in languages)
        self.stats["none"] += sum(language is None for language in languages)
        return languages


_DEFAULTS: dict[bool, LanguageDetector] = {}


def default_detector(low_accuracy: bool = False) -> LanguageDetector:
    """The process-wide detector of a mode: built once, reused by every call."""
    if low_accuracy not in _DEFAULTS:
        _DEFAULTS[low_accuracy] = LanguageDetector(low_accuracy=low_accuracy)
    return _DEFAULTS[low_accuracy]


# -- translation ----------------------------------------------------------------------------------

_NAME_TO_CODE: dict[str, str] = {}
for _code, _names in {
    "en": "english 英語 英文 英语 영어 anglais englisch inglés ingles",
    "ja": "japanese 日本語 日语 日文 일본어 japonais japanisch japonés",
    "zh": "chinese mandarin 中国語 中文 汉语 漢語 中国话 普通话 중국어 chinois chinesisch chino",
    "ko": "korean 韓国語 韩语 韓語 朝鮮語 한국어 coréen koreanisch coreano",
    "fr": "french フランス語 法语 法文 프랑스어 français französisch francés",
    "de": "german ドイツ語 德语 德文 독일어 allemand deutsch alemán",
    "es": "spanish スペイン語 西班牙语 西班牙文 스페인어 espagnol spanisch español",
    "it": "italian イタリア語 意大利语 이탈리아어 italien italienisch italiano",
    "pt": "portuguese ポルトガル語 葡萄牙语 포르투갈어 portugais portugiesisch portugués",
    "ru": "russian ロシア語 俄语 俄文 러시아어 russe russisch ruso",
    "nl": "dutch オランダ語 荷兰语 네덜란드어 néerlandais niederländisch holandés",
    "ar": "arabic アラビア語 阿拉伯语 아랍어 arabe arabisch árabe",
    "vi": "vietnamese ベトナム語 越南语 베트남어",
    "th": "thai タイ語 泰语 태국어",
}.items():
    for _name in _names.split():
        _NAME_TO_CODE[_name] = _code

_NAMES = "|".join(sorted((re.escape(n) for n in _NAME_TO_CODE), key=len, reverse=True))

TRANSLATE_RE = re.compile(
    r"\btranslat(?:e|es|ing)\b|\btranslat(?:ion|ed) (?:of|into|to|in)\b"
    r"|\bhow (?:do|would|can) (?:you|i|we) say\b"
    r"|\bwhat is .{1,40} in (?:" + _NAMES + r")\s*\?"
    r"|\btradu(?:is|ire|isez|cir|ce|zca|ction|cción)\b|übersetz"
)
"""A request to translate in a Latin-script language (matched against lowercased text)."""
_TRANSLATE_TRIGGERS = ("translat", " say", "what is", "tradu", "übersetz")
TRANSLATE_CJK_RE = re.compile(
    r"訳し|訳す|訳せ|訳を|翻訳|和訳|英訳|中訳|訳文|翻译|翻譯|译成|译为|譯成|翻成|번역"
)
"""A request to translate in Japanese, Chinese or Korean."""

_TARGET_RES = (
    re.compile(r"\b(?:into|to|in)\s+(" + _NAMES + r")\b", re.IGNORECASE),
    re.compile(r"(" + _NAMES + r")\s*(?:に|へ|で)\s*(?:訳|翻訳|直|言|書)"),
    re.compile(r"(?:成|为|為)\s*(" + _NAMES + r")"),
    re.compile(r"\b(?:en|in|auf|al|a)\s+(" + _NAMES + r")\b", re.IGNORECASE),
    re.compile(r"(" + _NAMES + r")\s*(?:로|으로)\s*번역"),
)
_SOURCE_RES = (
    re.compile(r"\bfrom\s+(" + _NAMES + r")\b", re.IGNORECASE),
    re.compile(r"(" + _NAMES + r")\s*(?:を|から|の文|の文章)"),
    re.compile(r"(?:把|将|將)\s*(?:这句|這句|这段|下面的)?\s*(" + _NAMES + r")"),
)
_SHORT_NAMES = {"英訳": "en", "和訳": "ja", "中訳": "zh"}

_QUOTED = re.compile(
    r"「([^」]+)」|『([^』]+)』|“([^”]+)”|\"([^\"]+)\"|‘([^’]+)’|(?<!\w)'([^']+)'(?!\w)"
)
_TARGET_NAME_ONLY = re.compile(r"(?:" + _NAMES + r")", re.IGNORECASE)
_AFTER_COLON = re.compile(r"[:：]\s*(.+)$", re.DOTALL)


def is_translation_request(instruction: str) -> bool:
    """True when the instruction asks for a translation."""
    lowered = instruction.lower()
    # The substring test skips the regex for nearly every record that is no translation.
    if any(t in lowered for t in _TRANSLATE_TRIGGERS) and TRANSLATE_RE.search(lowered):
        return True
    return has_cjk(instruction) and TRANSLATE_CJK_RE.search(instruction) is not None


def _named(patterns: Sequence[re.Pattern[str]], text: str) -> str | None:
    for pattern in patterns:
        match = pattern.search(text)
        if match:
            return _NAME_TO_CODE.get(match.group(1).lower()) or _NAME_TO_CODE.get(match.group(1))
    return None


def named_target(instruction: str) -> str | None:
    """The language an instruction asks to translate into ("into English", "英語に訳して")."""
    for short, code in _SHORT_NAMES.items():
        if short in instruction:
            return code
    return _named(_TARGET_RES, instruction)


def named_source(instruction: str) -> str | None:
    """The language an instruction says it translates from ("from French", "中国語を")."""
    return _named(_SOURCE_RES, instruction)


def source_text(record: Record) -> str:
    """What a translation record translates: its input, else the quoted part of the instruction."""
    if record.input.strip():
        return record.input
    quoted = [next(g for g in m.groups() if g) for m in _QUOTED.finditer(record.instruction)]
    quoted = [q for q in quoted if not _TARGET_NAME_ONLY.fullmatch(q.strip())]
    if quoted:
        return max(quoted, key=len)
    colon = _AFTER_COLON.search(record.instruction)
    if colon and colon.group(1).strip():
        return colon.group(1)
    return record.instruction


# -- records --------------------------------------------------------------------------------------


def main_text(record: Record) -> str:
    """The text that decides a record's language: instruction and output, capped."""
    text = f"{record.instruction[:TEXT_CAP]}\n{record.output[:TEXT_CAP]}"
    if not any(ch.isalpha() for ch in text):
        text = record.input[:TEXT_CAP]
    return text


def _certain_language(instruction: str, han_hint: str | None, stats: dict[str, int]) -> str | None:
    """The instruction's language when a rule is sure of it, else None."""
    text = instruction[:TEXT_CAP]
    if len(text.strip()) < 4:
        return None
    by_script = script_language(text, han_hint)
    if by_script is not None:
        stats["script"] += 1
        return by_script
    if english_shortcut(text):
        stats["english"] += 1
        return "en"
    return None


SHORT_TEXT = 20
"""Texts shorter than this (characters) defer to a language the instruction names."""


def _prefer(detected: str | None, named: str | None, short: bool) -> str | None:
    if named and (detected is None or short):
        return named
    return detected


@dataclass
class _Plan:
    """Which queries decide one record, and how to combine their answers."""

    main: int | None = None
    source: int | None = None
    target: int | None = None
    fixed: str | None = None
    named_source: str | None = None
    named_target: str | None = None
    short_source: bool = False
    short_target: bool = False


class RecordLanguages:
    """Languages of records in two steps, so that slow work overlaps with fast work.

    :meth:`add` applies the rules to records as they come (chunk by chunk); :meth:`finish` runs
    the statistical model once, on everything the rules left open, and combines the answers.
    """

    def __init__(self, detector: LanguageDetector | None = None) -> None:
        self.detector = detector or default_detector()
        self._plans: list[_Plan] = []
        self._texts: list[str] = []
        self._found: list[str | None] = []
        self._pending: list[int] = []

    def _ask(self, text: str, han_hint: str | None) -> int:
        decided, language = self.detector.by_rules(TextQuery(text, han_hint))
        if not decided:
            self._pending.append(len(self._found))
        self._texts.append(text[:LINGUA_CAP] if not decided else "")
        self._found.append(language)
        return len(self._found) - 1

    def add(self, records: Sequence[Record], categories: Sequence[str | None]) -> None:
        """Queue ``records``; ``categories[i]`` is the category record i has or will have."""
        for record, category in zip(records, categories, strict=True):
            self._plans.append(self._plan(record, category))

    def _plan(self, record: Record, category: str | None) -> _Plan:
        plan = _Plan()
        fields = (record.instruction, record.input, record.output)
        record_hint = "ja" if any(has_kana(t) for t in fields) else None
        if category != "translation":
            plan.fixed = _certain_language(record.instruction, record_hint, self.detector.stats)
            if plan.fixed is None:
                plan.main = self._ask(main_text(record), record_hint)
            return plan
        plan.named_source = named_source(record.instruction)
        plan.named_target = named_target(record.instruction)
        src = source_text(record)
        # Han-only text: trust the named language; else kana on the same side; else, when the
        # target is Japanese, a Han-only source is most likely Chinese.
        src_hint = plan.named_source or ("ja" if has_kana(src) else None)
        if src_hint is None and plan.named_target != "ja":
            src_hint = "ja" if has_kana(record.instruction) else None
        dst_hint = plan.named_target or ("ja" if has_kana(record.output) else None)
        plan.source = self._ask(src, src_hint)
        plan.target = self._ask(record.output, dst_hint)
        # A word or two is too little for a statistical guess to beat what the instruction
        # names outright ("Translate 'merci' into English").
        plan.short_source = len(src.strip()) < SHORT_TEXT
        plan.short_target = len(record.output.strip()) < SHORT_TEXT
        return plan

    def finish(self) -> list[str | None]:
        """The language of every record added, in order."""
        found = self.detector.by_model([self._texts[i] for i in self._pending])
        for i, language in zip(self._pending, found, strict=True):
            self._found[i] = language
        self._pending = []
        languages: list[str | None] = []
        for plan in self._plans:
            if plan.source is None or plan.target is None:
                languages.append(plan.fixed if plan.main is None else self._found[plan.main])
                continue
            src = _prefer(self._found[plan.source], plan.named_source, plan.short_source)
            dst = _prefer(self._found[plan.target], plan.named_target, plan.short_target)
            languages.append(f"{src}-{dst}" if src and dst and src != dst else (src or dst))
        return languages


def record_languages(
    records: Sequence[Record],
    categories: Sequence[str | None],
    detector: LanguageDetector | None = None,
) -> list[str | None]:
    """The language of each record; ``categories[i]`` is the category it has or will have.

    A ``translation`` record gets ``src-dst`` (source: its input or the quoted text of the
    instruction; target: its output); a single code when both sides are the same language.
    Other records are decided by instruction and output; an instruction whose language is
    certain by rule (CJK script, or plainly English) decides alone, because the output may be
    code, a list of foreign names, or text left untranslated.
    """
    job = RecordLanguages(detector)
    job.add(records, categories)
    return job.finish()
