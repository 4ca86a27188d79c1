"""The offline teacher: a reasoning composed from the category guideline and the record's features.

Deterministic and instant, it needs no model and no network, so a garden can go through the whole
loop on a machine with neither. It is not an LLM and its provenance says so: the lines follow the
category's rule of thumb and are filled in from the record (the key terms of the instruction,
whether an input is given, how the output is shaped, which languages a translation joins).
Lines are written in English, Japanese or Chinese; other languages get English.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from bonsai.records import Record
from bonsai.teach.templates import language_codes

VERSION = "compose-1"
"""Changes whenever the composed text would change, so cached reasonings are refreshed."""


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


_EN_STOP = _wordset(
    """a an the and or but of to in on at by for with from into about as is are was were be been
    being do does did have has had it its this that these those there their they them you your
    i me my we our he she his her what which who whom whose when where why how many much more
    most some any all each every other than then so if not no yes can could should would will
    shall may might must please give list tell write explain describe translate following below
    above based using use sentence sentences text passage paragraph question questions answer
    reference words word name names provide classify summarize summarise extract identify find
    make create generate short brief one two three four five few several also like just only
    very into out up down over under between given following per best good way ways new
    thing things something someone anyone people person often usually always never sometimes
    before after get got kind sort type need needs want know take keep help say fun sure right
    really still again yet slightly straight okay ok without within through across during
    against among around since until while whether"""
)
_CJK_STOP = _wordset(
    """説明 教え 書い 翻訳 次 以下 文章 質問 答え 何 内容 理由 方法 場合 ください 什么 下面 请
    翻译 以下 内容 问题 回答 句子 一下 怎么 为什么 哪些 这个 那个"""
)
_QUOTED = re.compile(r"「([^」]{1,16})」|『([^』]{1,16})』|“([^”]{1,24})”|\"([^\"]{1,24})\"")
_EN_WORD = re.compile(r"[A-Za-z][A-Za-z'-]{2,}")
_CJK_RUN = re.compile(r"[\u30a0-\u30ff\u31f0-\u31ff]{2,}|[\u3400-\u4dbf\u4e00-\u9fff]{2,}")
_BULLET = re.compile(r"^\s*(?:[-*•·]|\d{1,2}[.)、])\s*")
_SENTENCE_END = re.compile(r"[.!?。！？]+")
_DIGIT = re.compile(r"\d")

_KINDS = {  # question word → what kind of thing the answer is
    "en": [
        (r"^\s*how (?:many|much|long|old|far)\b", "an amount"),
        (r"^\s*who\b", "a person"),
        (r"^\s*when\b", "a time or date"),
        (r"^\s*where\b", "a place"),
        (r"^\s*why\b", "a reason"),
        (r"^\s*how\b", "a way of doing it"),
    ],
}


@dataclass
class Features:
    """What the composed lines are filled in from."""

    terms: list[str]
    has_input: bool
    items: int
    """Lines of a list-shaped output (0 when it is prose)."""
    sentences: int
    questions: int
    words: int
    chars: int
    cjk: bool
    """The output is written in Chinese or Japanese (length goes in characters)."""
    short: bool
    numeric: bool
    summarise: bool
    answer_kind: str | None
    source: str | None
    target: str | None


def term_candidates(text: str) -> list[tuple[float, int, str]]:
    """(weight, position, term) of each word that could say what ``text`` is about: longer
    English words (names weigh more) and CJK runs, without stop words; heavier is better."""
    candidates: list[tuple[float, int, str]] = []
    for position, match in enumerate(_EN_WORD.finditer(text)):
        word = re.sub(r"'s$", "", match.group(0)).strip("'-")
        if word.lower() in _EN_STOP or len(word) < 3:
            continue
        # Names (capitalised, not first in the sentence) say most about the topic.
        capital = word[0].isupper() and match.start() > 0
        candidates.append((len(word) + (4 if capital else 0), position, word))
    for position, match in enumerate(_CJK_RUN.finditer(text), start=1000):
        run = match.group(0)
        if run in _CJK_STOP or len(run) > 6:  # a long Chinese run is a phrase, not a term
            continue
        candidates.append((len(run) * 2.5, position, run))
    return candidates


def key_terms(instruction: str, limit: int = 2) -> list[str]:
    """A few words that say what the instruction is about, in the order they appear."""
    quoted = [next(g for g in m.groups() if g) for m in _QUOTED.finditer(instruction)]
    if quoted:
        return quoted[:limit]
    best = sorted(term_candidates(instruction), key=lambda c: (-c[0], c[1]))[:limit]
    seen: list[str] = []
    for _, _, word in sorted(best, key=lambda c: c[1]):
        if word not in seen:
            seen.append(word)
    return seen


def features(record: Record) -> Features:
    from bonsai.curate.language import named_source, named_target

    output = record.output.strip()
    lines = [line for line in output.splitlines() if line.strip()]
    bulleted = sum(1 for line in lines if _BULLET.match(line))
    items = len(lines) if (bulleted >= 2 or len(lines) >= 3) else 0
    sentences = max(1, len([s for s in _SENTENCE_END.split(output) if s.strip()]))
    words = len(output.split())
    chars = len(output)
    cjk_output = bool(re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", output))
    short = (chars <= 20) if cjk_output else (words <= 6)
    codes = language_codes(record.language)
    source = named_source(record.instruction) or (codes[0] if codes else None)
    target = named_target(record.instruction) or (codes[1] if len(codes) > 1 else None)
    answer_kind = None
    for pattern, kind in _KINDS["en"]:
        if re.search(pattern, record.instruction, re.IGNORECASE):
            answer_kind = kind
            break
    summarise = (record.source_category or "") == "summarization" or bool(
        re.search(r"summar|要約|まとめ|总结|概括|摘要", record.instruction, re.IGNORECASE)
    )
    return Features(
        terms=key_terms(record.instruction),
        has_input=bool(record.input.strip()),
        items=items,
        sentences=min(sentences, 6),
        questions=output.count("?") + output.count("？"),
        words=words,
        chars=chars,
        cjk=cjk_output,
        short=short,
        numeric=short and bool(_DIGIT.search(output)),
        summarise=summarise,
        answer_kind=answer_kind,
        source=source,
        target=target,
    )


# -- the lines, per language ------------------------------------------------------------------

_NAMES = {
    "en": {"en": "English", "ja": "Japanese", "zh": "Chinese", "ko": "Korean", "fr": "French",
           "de": "German", "es": "Spanish", "it": "Italian", "pt": "Portuguese", "ru": "Russian"},
    "ja": {"en": "英語", "ja": "日本語", "zh": "中国語", "ko": "韓国語", "fr": "フランス語",
           "de": "ドイツ語", "es": "スペイン語", "it": "イタリア語", "pt": "ポルトガル語",
           "ru": "ロシア語"},
    "zh": {"en": "英语", "ja": "日语", "zh": "中文", "ko": "韩语", "fr": "法语", "de": "德语",
           "es": "西班牙语", "it": "意大利语", "pt": "葡萄牙语", "ru": "俄语"},
}  # fmt: skip


def _round(n: int) -> int:
    """A friendly approximate length: 7 → 5, 43 → 40, 160 → 150."""
    step = 5 if n < 50 else 10 if n < 200 else 50
    return max(step, round(n / step) * step)


def _en(category: str | None, f: Features) -> list[str]:
    terms = " and ".join(f'"{t}"' for t in f.terms)
    about = f" about {terms}" if terms else ""
    names = _NAMES["en"]
    src = names.get(f.source or "", "the source language")
    dst = names.get(f.target or "", "the requested language")
    if f.items:
        shape = f"You should give the answer as a list of {f.items} items."
    elif f.numeric:
        shape = "You should give the number with its unit, and little else."
    elif f.short:
        shape = "You should answer in a few words, without extra explanation."
    else:
        s = "sentence" if f.sentences == 1 else "sentences"
        shape = f"You should answer in about {f.sentences} {s}, the key point first."
    kind = f", which is {f.answer_kind}" if f.answer_kind else ""
    if category == "open_qa":
        return [
            f"You should pin down what the question asks{about}{kind}.",
            f"You should recall the well-established facts{about} and settle on the single"
            " most likely answer.",
            shape,
        ]
    if category == "closed_qa":
        first = (
            f"You should read the input and find the part{about}."
            if f.has_input
            else f"You should work only from what the instruction itself says{about}."
        )
        second = (
            "You should keep the main points and drop details and examples."
            if f.summarise
            else "You should take the answer from the text itself, not from outside knowledge."
        )
        return [first, second, shape]
    if category == "classification":
        items = terms or "each item"
        last = (
            "You should give each item with its category, in the order given."
            if f.items
            else "You should state exactly one category, without hedging."
        )
        return [
            "You should identify the categories to choose from and the rule that separates them.",
            f"You should check {items} against that rule, one by one.",
            last,
        ]
    if category == "translation":
        return [
            f"You should identify the source text and translate it from {src} into {dst}.",
            "You should keep names, numbers and terms exact, and carry over the tone of the"
            " original.",
            f"You should choose natural wording and word order in {dst} rather than a"
            " word-for-word rendering.",
        ]
    if category == "brainstorming":
        count = f"about {f.items}" if f.items else "several"
        return [
            f"Creator should work out what the ideas{about} are for and what limits the request"
            " sets.",
            "Creator should draw ideas from different angles so that no two are alike.",
            f"Creator should offer {count} short, concrete ideas, the most useful first.",
        ]
    if category == "creative":
        piece = f"a piece{about}" if about else "the piece"
        length = f"{_round(f.chars)} characters" if f.cjk else f"{_round(f.words)} words"
        return [
            f"Creator should settle the form, audience and tone that {piece} calls for.",
            "Creator should build it around one clear central idea or image.",
            f"Creator should keep it to about {length} and end it deliberately.",
        ]
    if category == "question_to_question":
        questions = max(2, f.questions)
        return [
            f"Creator should find what the question{about} leaves unclear or takes for granted.",
            "Creator should turn each gap into a sharper question that leads toward an answer"
            " the person can act on.",
            f"Creator should ask about {questions} questions, the most clarifying first.",
        ]
    return [
        f"You should pin down what the instruction asks{about}.",
        "You should find the knowledge or the part of the input that the answer rests on.",
        shape,
    ]


def _ja(category: str | None, f: Features) -> list[str]:
    terms = "と".join(f"「{t}」" for t in f.terms)
    about = f"{terms}について" if terms else ""
    names = _NAMES["ja"]
    src = names.get(f.source or "", "原文の言語")
    dst = names.get(f.target or "", "求められた言語")
    if f.items:
        shape = f"あなたは、{f.items}項目の箇条書きで答えるべきです。"
    elif f.numeric:
        shape = "あなたは、数値を単位とともに簡潔に答えるべきです。"
    elif f.short:
        shape = "あなたは、余計な説明をせず短く答えるべきです。"
    else:
        shape = f"あなたは、要点を先に、{f.sentences}文ほどで答えるべきです。"
    if category == "open_qa":
        return [
            f"あなたは、質問が{about}何を尋ねているのかをはっきりさせるべきです。",
            f"あなたは、{about}確かな知識を思い出し、最も妥当な答えを一つに絞るべきです。",
            shape,
        ]
    if category == "closed_qa":
        first = (
            f"あなたは、与えられた文章から{about}書かれた部分を探すべきです。"
            if f.has_input
            else "あなたは、指示文に書かれていることだけを手がかりにするべきです。"
        )
        second = (
            "あなたは、要点を残して細部や例を省くべきです。"
            if f.summarise
            else "あなたは、外部の知識ではなく本文の記述から答えを取り出すべきです。"
        )
        return [first, second, shape]
    if category == "classification":
        last = (
            "あなたは、各項目を与えられた順に分類して示すべきです。"
            if f.items
            else "あなたは、分類を一つだけはっきり答えるべきです。"
        )
        return [
            "あなたは、選ぶべき分類とそれを分ける基準を確認するべきです。",
            f"あなたは、{terms or '各項目'}をその基準に一つずつ照らし合わせるべきです。",
            last,
        ]
    if category == "translation":
        return [
            f"あなたは、原文を見つけて{src}から{dst}に訳すべきです。",
            "あなたは、名前・数字・用語を正確に保ち、原文の調子を引き継ぐべきです。",
            f"あなたは、直訳ではなく自然な{dst}の言葉と語順を選ぶべきです。",
        ]
    if category == "brainstorming":
        count = f"{f.items}個ほど" if f.items else "いくつか"
        return [
            f"作り手は、{about}のアイデアが何のためのものか、どんな条件があるかを押さえるべきです。",
            "作り手は、互いに似ないように異なる角度からアイデアを集めるべきです。",
            f"作り手は、具体的で短いアイデアを{count}、役立つ順に挙げるべきです。",
        ]
    if category == "creative":
        return [
            f"作り手は、{about}の作品にふさわしい形式・読み手・調子を決めるべきです。",
            "作り手は、一つのはっきりした中心のイメージを軸に組み立てるべきです。",
            f"作り手は、{_round(f.chars)}字ほどに収め、意図した結びで終えるべきです。",
        ]
    if category == "question_to_question":
        return [
            f"作り手は、{about}の質問で何が曖昧か、何が前提になっているかを見つけるべきです。",
            "作り手は、その隙間を、行動につながる答えへ近づく鋭い質問に変えるべきです。",
            f"作り手は、状況を最もはっきりさせる質問から順に{max(2, f.questions)}つほど"
            "尋ねるべきです。",
        ]
    return [
        f"あなたは、指示が{about}何を求めているのかをはっきりさせるべきです。",
        "あなたは、答えの根拠となる知識や入力の部分を見つけるべきです。",
        shape,
    ]


def _zh(category: str | None, f: Features) -> list[str]:
    terms = "和".join(f"“{t}”" for t in f.terms)
    about = f"关于{terms}的" if terms else ""
    names = _NAMES["zh"]
    src = names.get(f.source or "", "原文语言")
    dst = names.get(f.target or "", "要求的语言")
    if f.items:
        shape = f"你应该用{f.items}个要点列出答案。"
    elif f.numeric:
        shape = "你应该给出数字和单位，不必多说。"
    elif f.short:
        shape = "你应该简短作答，不加多余解释。"
    else:
        shape = f"你应该先说要点，用大约{f.sentences}句话回答。"
    if category == "open_qa":
        return [
            f"你应该先弄清这个{about}问题到底在问什么。",
            f"你应该回想{about}可靠知识，把答案缩小到最可能的一个。",
            shape,
        ]
    if category == "closed_qa":
        first = (
            f"你应该在给出的文本中找到{about}部分。"
            if f.has_input
            else "你应该只依据指令本身写明的内容。"
        )
        second = (
            "你应该保留要点，省略细节和例子。"
            if f.summarise
            else "你应该从原文中取出答案，而不是依靠外部知识。"
        )
        return [first, second, shape]
    if category == "classification":
        last = "你应该按给出的顺序写出每一项的类别。" if f.items else "你应该只明确给出一个类别。"
        return [
            "你应该先确认可选的类别以及区分它们的标准。",
            f"你应该把{terms or '每一项'}逐一对照这个标准。",
            last,
        ]
    if category == "translation":
        return [
            f"你应该找出原文，把它从{src}译成{dst}。",
            "你应该准确保留名字、数字和术语，并延续原文的语气。",
            f"你应该选择自然的{dst}措辞和语序，而不是逐字直译。",
        ]
    if category == "brainstorming":
        count = f"大约{f.items}个" if f.items else "几个"
        return [
            f"创作者应该弄清{about}点子是为了什么、有哪些限制。",
            "创作者应该从不同角度收集点子，避免彼此雷同。",
            f"创作者应该列出{count}简短具体的点子，最有用的放在前面。",
        ]
    if category == "creative":
        return [
            f"创作者应该确定{about}作品适合的形式、读者和语气。",
            "创作者应该围绕一个清晰的核心意象来构思。",
            f"创作者应该把篇幅控制在大约{_round(f.chars)}字，并有意识地收尾。",
        ]
    if category == "question_to_question":
        return [
            f"创作者应该找出这个{about}问题中哪些地方含糊或被默认。",
            "创作者应该把每个空白变成更具体、能引向可行答案的问题。",
            f"创作者应该按从最能澄清情况到更深入的顺序，提出大约{max(2, f.questions)}个问题。",
        ]
    return [
        f"你应该弄清这个{about}指令到底要求什么。",
        "你应该找到答案所依据的知识或输入中的部分。",
        shape,
    ]


_WRITERS: dict[str, Callable[[str | None, Features], list[str]]] = {
    "en": _en,
    "ja": _ja,
    "zh": _zh,
}


def compose_reasoning(record: Record, language: str | None) -> str:
    """The composed reasoning of ``record`` in ``language`` (English when not supported)."""
    writer = _WRITERS.get(language or "en", _en)
    return "\n".join(writer(record.category, features(record)))
