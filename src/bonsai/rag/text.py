"""Text helpers shared by chunking and search: CJK detection, size in units, search terms.

Japanese and Chinese are written without spaces, so "a word" is not a usable unit there. BONSAI
measures text in *units*: one per word in space-separated scripts and one per character in CJK
scripts. For full-text search, CJK runs become overlapping character bigrams (the classic CJK
indexing scheme): a two-character word such as 掃除 is then a term of its own, which a trigram
index could not find.
"""

from __future__ import annotations

import re

from bonsai.util.chars import SEARCH_CJK, fold_for_search

_CJK_RANGES = SEARCH_CJK
CJK_RUN = re.compile(f"[{_CJK_RANGES}]+")
_HIRAGANA_ONLY = re.compile("^[\u3040-\u309f]+$")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_UNIT = re.compile(f"[{_CJK_RANGES}]|[^\\s{_CJK_RANGES}]+")

_STOPWORDS_TEXT = """
    a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further
    had has have having he her here hers herself him himself his how i if in into is it its
    itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself yourselves
    give me tell please
"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())
"""English function words dropped from search queries: each would match nearly every chunk, which
costs time on a large index and adds nothing to the ranking."""


normalise = fold_for_search
"""NFKC (full-width ASCII becomes ASCII, half-width katakana becomes full-width), lower case
(:func:`bonsai.util.chars.fold_for_search`)."""


def units(text: str) -> int:
    """Size of ``text``: words in space-separated scripts plus characters in CJK scripts."""
    return len(_UNIT.findall(text))


def split_units(text: str, limit: int) -> list[str]:
    """Cut ``text`` into pieces of at most ``limit`` units (the last resort for a huge sentence)."""
    pieces: list[str] = []
    start = 0
    count = 0
    for match in _UNIT.finditer(text):
        if count == limit:
            pieces.append(text[start : match.start()].strip())
            start, count = match.start(), 0
        count += 1
    tail = text[start:].strip()
    if tail:
        pieces.append(tail)
    return [p for p in pieces if p]


def _bigrams(run: str) -> list[str]:
    if len(run) == 1:
        return [run]
    grams = [run[i : i + 2] for i in range(len(run) - 1)]
    # The last character also stands alone, so that a one-character query (as a prefix) finds
    # it even where it ends a run and so starts no bigram.
    grams.append(run[-1])
    return grams


def index_text(text: str) -> str:
    """The form of ``text`` that goes into the full-text index: CJK runs become bigrams."""
    text = normalise(text)
    return CJK_RUN.sub(lambda m: " " + " ".join(_bigrams(m.group())) + " ", text)


def query_terms(query: str) -> list[str]:
    """FTS5 terms for a free-text query (deduplicated, in order); joined with OR by the caller.

    Words of space-separated scripts are quoted terms (the porter stemmer in the index makes
    "cleaning" match "clean"); English stopwords are dropped unless nothing else is left. A CJK run
    of two or more characters gives its bigrams (bigrams of hiragana only, mostly particles and
    inflections, are dropped when other terms remain); a single CJK character becomes a prefix
    term, which matches every bigram that starts with it.
    """
    text = normalise(query)
    words: list[str] = []
    stop: list[str] = []
    cjk: list[str] = []
    kana: list[str] = []
    single: list[str] = []
    pos = 0
    for match in CJK_RUN.finditer(text):
        _latin_words(text[pos : match.start()], words, stop)
        run = match.group()
        if len(run) == 1:
            single.append(f'"{run}" *')
        else:
            for gram in (run[i : i + 2] for i in range(len(run) - 1)):
                (kana if _HIRAGANA_ONLY.match(gram) else cjk).append(f'"{gram}"')
        pos = match.end()
    _latin_words(text[pos:], words, stop)
    terms = words + cjk + single
    if not terms:
        terms = kana + stop
    return list(dict.fromkeys(terms))


def _latin_words(text: str, words: list[str], stop: list[str]) -> None:
    for word in _WORD.findall(text):
        (stop if word in STOPWORDS else words).append(f'"{word}"')


_KANA = re.compile("[\u3040-\u30ff\u31f0-\u31ff]")
_HAN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]")
_HANGUL = re.compile("[\uac00-\ud7af]")
_LATIN_WORD = re.compile(r"[^\W\d_]+")
_ASCII_LETTER = re.compile("[A-Za-z]")


def language_of(text: str) -> str:
    """The main language of ``text`` as far as its script tells: ``ja``, ``zh``, ``ko``,
    ``latin`` (words in space-separated scripts) or ``""`` (no letters at all).

    Words are weighed against CJK characters at one word to two characters (a Japanese or
    Chinese word is about two), so an English sentence with one katakana word stays ``latin``.
    Japanese is Han characters with kana; Han without any kana is taken as Chinese. Cheap enough
    to run on every chunk when the dense index loads.
    """
    if text.isascii():  # most English chunks: no need to count anything
        return "latin" if _ASCII_LETTER.search(text) else ""
    kana = len(_KANA.findall(text))
    han = len(_HAN.findall(text))
    hangul = len(_HANGUL.findall(text))
    latin = len(_LATIN_WORD.findall(CJK_RUN.sub(" ", text)))
    cjk = kana + han + hangul
    if not cjk and not latin:
        return ""
    if 2 * latin >= cjk:
        return "latin"
    if hangul >= kana + han:
        return "ko"
    return "ja" if kana else "zh"


def script_of(language: str) -> str:
    """The script class of a language from :func:`language_of`: full-text terms of one class
    never match text of another (``cjk`` for Japanese and Chinese, which share Han characters)."""
    return "cjk" if language in ("ja", "zh") else language
