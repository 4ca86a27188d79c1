"""Characters: which script a character is in, how text is folded before it is compared, and
character trigrams. One home for what curate, teach, evaluate and rag all need.

Where callers need different answers they get a named variant, and the reason is written beside
it; none of these may change without changing what a stored index, a check or a score means.

Script classes (strings to put inside ``[...]`` in a regular expression):

* :data:`CJK`: kana, CJK ideographs (unified, extension A, compatibility) and hangul syllables.
  The general test "is this Chinese, Japanese or Korean writing": duplicate answers, the teach
  stage's length checks.
* :data:`CJK_FOLDED`: the same without the compatibility ideographs, for text already folded by
  NFKC, which maps those onto the unified ones (evaluation's word units).
* :data:`SEARCH_CJK`: wider, for the notes index (iteration marks 々〆〇, the katakana
  extensions, extensions B–F): it decides index terms and chunk sizes, so a change would need
  every index rebuilt.
* :data:`KANA_LETTERS`, :data:`HAN`, :data:`HANGUL`, :data:`LANGUAGE_CJK`: for language
  detection, which counts letters per script: kana *letters* only (not ゠ or the middle dot ・,
  which Chinese writes too), half-width katakana, and the hangul jamo, which count as Korean.
"""

from __future__ import annotations

import re
import unicodedata

_KANA_BLOCKS = "\u3040-\u30ff"
_HAN_EXT_A = "\u3400-\u4dbf"
_HAN_UNIFIED = "\u4e00-\u9fff"
_HAN_COMPAT = "\uf900-\ufaff"
_HANGUL_SYLLABLES = "\uac00-\ud7af"

CJK = _KANA_BLOCKS + _HAN_EXT_A + _HAN_UNIFIED + _HAN_COMPAT + _HANGUL_SYLLABLES
CJK_FOLDED = _KANA_BLOCKS + _HAN_EXT_A + _HAN_UNIFIED + _HANGUL_SYLLABLES
SEARCH_CJK = (
    "\u3005\u3006\u3007"  # 々 〆 〇
    "\u3040-\u309f"  # hiragana
    "\u30a0-\u30ff"  # katakana (with ー)
    "\u31f0-\u31ff"  # katakana phonetic extensions
    + _HAN_EXT_A
    + _HAN_UNIFIED
    + _HAN_COMPAT
    + _HANGUL_SYLLABLES
    + "\U00020000-\U0002ffff"  # CJK extensions B-F
)
KANA_LETTERS = "\u3041-\u3096\u309d-\u309f\u30a1-\u30fa\u30fc-\u30ff\u31f0-\u31ff\uff66-\uff9d"
HAN = _HAN_EXT_A + _HAN_UNIFIED + _HAN_COMPAT
HANGUL = _HANGUL_SYLLABLES + "\u1100-\u11ff\u3131-\u318e"
LANGUAGE_CJK = "\u3041-\u30ff\u31f0-\u31ff\uff66-\uff9d" + HAN + HANGUL

CJK_CHAR = re.compile(f"[{CJK}]")
"""One character of :data:`CJK`."""

_PUNCT_CATEGORIES = ("P", "S")


def fold(text: str | None) -> str:
    """Text as duplicates are compared: NFKC (width), case-folded, whitespace collapsed."""
    if not text:
        return ""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def fold_words(text: str) -> str:
    """Text as answers are scored: :func:`fold`, and punctuation and symbols count as spaces
    (a person does not mind them)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    kept = [" " if unicodedata.category(ch)[0] in _PUNCT_CATEGORIES else ch for ch in text]
    return " ".join("".join(kept).split())


def fold_for_search(text: str) -> str:
    """Text as the notes index stores it: NFKC and ``str.lower`` (not ``casefold``: the index's
    terms were made that way, and ß must stay ß for them to match)."""
    return unicodedata.normalize("NFKC", text).lower()


def trigrams(text: str) -> set[str]:
    """Character trigrams of :func:`fold_words` ``text`` with the spaces taken out (a text of
    one or two characters is its own single gram)."""
    t = fold_words(text).replace(" ", "")
    return {t[i : i + 3] for i in range(max(1, len(t) - 2))} if t else set()


def trigram_similarity(a: str, b: str) -> float:
    """Jaccard similarity of the :func:`trigrams` of ``a`` and ``b`` (0 when either is empty)."""
    x, y = trigrams(a), trigrams(b)
    return len(x & y) / len(x | y) if x and y else 0.0
