"""Language centring: taking each language's own offset out of multilingual sentence vectors.

A multilingual encoder such as multilingual-e5-small places a sentence and its translation close
together, but every vector also carries a component that says which language it is in. Two
unrelated texts in the same language are therefore often closer than a question and its answer
in another language (measured on the sample notes: an English question scores 0.04 higher, on
average, against every English chunk than against every Japanese one, and the answering Japanese
chunk fell out of the top 5). Subtracting each language's mean vector from the vectors of that
language, and normalising again, removes most of that component (Libovický et al., 2020, "On the
language neutrality of pre-trained multilingual representations").

The means are computed once per model from general text by :func:`build` and ship with the
package (``data/<model>.means.npz`` and its ``.json`` manifest). Queries and passages have
separate means, since E5 prefixes them differently. A language without a mean of its own (Korean,
or text with no letters) has the mean of the known languages taken out, which still removes the
component that all the model's vectors share.

Rebuild (about two minutes on two cores)::

    python -m bonsai.rag.centering [--shared-data ../shared/data] [--per-language 600]
"""

from __future__ import annotations

import json
import random
import subprocess
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from bonsai.rag.text import language_of

LANGUAGES = ("latin", "ja", "zh")
"""Languages (as :func:`bonsai.rag.text.language_of` names them) with a mean of their own."""
MODELS = ("multilingual-e5-small",)
"""Models that are centred: the multilingual ones. An English-only model has no useful vectors
for other languages to align, so it is left as it is."""
PASSAGE_SENTENCES = 4
"""Sentences joined into one passage when the passage means are computed: closer to a chunk."""


@dataclass(frozen=True)
class LanguageMeans:
    """Mean vectors of one model, per language, for queries and for passages."""

    model: str
    query: dict[str, np.ndarray]
    passage: dict[str, np.ndarray]

    def _mean(self, table: dict[str, np.ndarray], language: str) -> np.ndarray:
        if language in table:
            return table[language]
        return np.mean([table[lang] for lang in LANGUAGES], axis=0)

    def center_query(self, vector: np.ndarray, language: str) -> np.ndarray:
        """The query vector with its language's mean taken out, of norm 1."""
        return _unit(np.asarray(vector, np.float32) - self._mean(self.query, language))

    def center_passages(self, matrix: np.ndarray, languages: np.ndarray) -> np.ndarray:
        """Each row with the mean of its language (``languages[i]``) taken out, of norm 1."""
        out = np.array(matrix, dtype=np.float32, copy=True)
        for language in np.unique(languages):
            rows = languages == language
            out[rows] -= self._mean(self.passage, str(language))
        return _unit(out)


def _unit(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    return (matrix / np.maximum(norms, 1e-12)).astype(np.float32)


def _data_file(model: str, suffix: str) -> Path:
    return Path(str(resources.files("bonsai.rag") / "data" / f"{model}{suffix}"))


_loaded: dict[str, LanguageMeans | None] = {}


def load_means(model: str) -> LanguageMeans | None:
    """The shipped means of ``model``, or None for a model that is not centred."""
    if model not in _loaded:
        path = _data_file(model, ".means.npz")
        if model not in MODELS or not path.exists():
            _loaded[model] = None
        else:
            with np.load(path) as data:
                table = {key: np.asarray(data[key], np.float32) for key in data.files}
            _loaded[model] = LanguageMeans(
                model,
                {lang: table[f"query_{lang}"] for lang in LANGUAGES},
                {lang: table[f"passage_{lang}"] for lang in LANGUAGES},
            )
    return _loaded[model]


# -- building -----------------------------------------------------------------------------------


def detokenise_en(line: str) -> str:
    """A line of the tokenised English of ``enja-pairs`` as ordinary text."""
    import re

    text = re.sub(r" '(t|s|re|ve|ll|d|m)\b", r"'\1", line.strip())
    text = re.sub(r" ([.,!?;:%)])", r"\1", text)
    text = re.sub(r"\bi\b", "I", text)
    return text[:1].upper() + text[1:]


def detokenise_ja(line: str) -> str:
    """A line of the word-split Japanese of ``enja-pairs`` as ordinary text."""
    import re

    # The corpus puts a space between Japanese words; one is kept only between ASCII words.
    return re.sub(r" (?![A-Za-z0-9])|(?<![A-Za-z0-9]) ", "", line.strip())


def general_sentences(shared_data: Path, per_language: int, seed: int = 0) -> dict[str, list[str]]:
    """Everyday sentences per language: English and Japanese from the Tanaka corpus
    (``enja-pairs/train.*``, different pairs for each language), Chinese from the shipped
    ``data/zh-sentences.txt``, written for this purpose on mixed everyday topics."""
    folder = shared_data / "enja-pairs"
    en = (folder / "train.en").read_text(encoding="utf-8").splitlines()
    ja = (folder / "train.ja").read_text(encoding="utf-8").splitlines()
    order = list(range(len(en)))
    random.Random(seed).shuffle(order)
    zh_path = _data_file("zh-sentences", ".txt")
    zh = [s for s in zh_path.read_text(encoding="utf-8").splitlines() if s.strip()]
    return {
        "latin": [detokenise_en(en[i]) for i in order[:per_language]],
        "ja": [detokenise_ja(ja[i]) for i in order[per_language : 2 * per_language]],
        "zh": zh[:per_language],
    }


def build(shared_data: Path, per_language: int = 600) -> Path:
    """Compute and write the means of every model in :data:`MODELS` that is installed."""
    from bonsai.rag.embed import is_available, load_encoder

    sentences = general_sentences(shared_data, per_language)
    for lang, texts in sentences.items():
        assert all(language_of(t) in (lang, "") for t in texts[:50]), lang
    written = None
    for model in MODELS:
        if not is_available(model):
            continue
        encoder = load_encoder(model)
        arrays: dict[str, np.ndarray] = {}
        for lang, texts in sentences.items():
            joiner = " " if lang == "latin" else ""
            passages = [
                joiner.join(texts[i : i + PASSAGE_SENTENCES])
                for i in range(0, len(texts), PASSAGE_SENTENCES)
            ]
            queries = np.stack([encoder.encode_query(t) for t in texts])
            arrays[f"query_{lang}"] = queries.mean(axis=0)
            arrays[f"passage_{lang}"] = encoder.encode_passages(passages).mean(axis=0)
            print(f"{model} {lang}: {len(texts)} sentences, {len(passages)} passages")
        written = _data_file(model, ".means.npz")
        means: dict[str, Any] = {k: v.astype(np.float32) for k, v in arrays.items()}
        np.savez(written, **means)
        manifest = {
            "model": model,
            "what": "mean query and passage vectors per language, for language centring",
            "sentences": {lang: len(texts) for lang, texts in sentences.items()},
            "passage_sentences": PASSAGE_SENTENCES,
            "sources": {
                "latin": "enja-pairs train.en (Tanaka Corpus, via odashi/small_parallel_enja)",
                "ja": "enja-pairs train.ja (Tanaka Corpus, via odashi/small_parallel_enja)",
                "zh": "bonsai/rag/data/zh-sentences.txt (written for BONSAI, Apache-2.0)",
            },
            "credit": "Tanaka Corpus (public domain; Tatoeba edition CC BY 2.0 FR) and"
            " small_parallel_enja, for the English and Japanese sentences",
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "code_version": _code_version(),
            "command": "python -m bonsai.rag.centering",
        }
        _data_file(model, ".means.json").write_text(
            json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
    if written is None:
        raise SystemExit("no multilingual embedding model is installed")
    return written


def _code_version() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    import argparse

    from bonsai.env import SHARED_DATA

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = Path(SHARED_DATA.get("../shared/data"))
    parser.add_argument("--shared-data", type=Path, default=default)
    parser.add_argument("--per-language", type=int, default=600)
    args = parser.parse_args()
    print(f"wrote {build(args.shared_data, args.per_language)}")


if __name__ == "__main__":
    main()
