"""How right and how fast `bonsai data annotate` is, on data other people wrote.

Category: the 403 Dolly records of the shared test data, their human labels mapped to the seven
with `normalise_category`. The cue rules were written looking at the even-numbered records only
(the "dev" half); the odd-numbered half was never looked at while writing them, so its accuracy is
the honest estimate. A multinomial naive Bayes over instruction words, scored by 5-fold
cross-validation on the same records, is the learned baseline beside it. The Alpaca seed tasks
come in English and Japanese: how often a pair gets the same category shows that the rules work
in Japanese as they do in English.

Language: the Alpaca seed tasks (all English; all Japanese), Dolly (English but for one French
record) and short sentences written for this benchmark, with lingua in high- and low-accuracy mode
side by side. Speed: annotating 16,000 records (Dolly and seed tasks, repeated) in one process.

    .venv/bin/python bench/annotate_accuracy.py
"""

from __future__ import annotations

import itertools
import json
import math
import random
import re
import resource
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

from bonsai.curate.annotate import AnnotateArgs
from bonsai.curate.category import suggest_category
from bonsai.curate.language import LanguageDetector, TextQuery, record_languages
from bonsai.records import CATEGORIES, Record, normalise_category

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# Short sentences, not from any dataset, for the high/low accuracy comparison.
SHORT = {
    "en": ["Good luck!", "See you soon", "Thanks a lot", "Nice weather today", "Happy birthday"],
    "fr": ["Où est la gare ?", "Merci beaucoup", "J'aime le chocolat.", "Il pleut encore",
           "Bonne nuit, mon ami", "Je suis fatigué"],
    "de": ["Wo ist der Bahnhof?", "Danke schön", "Ich liebe Schokolade.", "Es regnet schon wieder",
           "Gute Nacht, mein Freund", "Ich bin müde"],
    "es": ["¿Dónde está la estación?", "Muchas gracias", "Me encanta el chocolate.",
           "Está lloviendo otra vez", "Buenas noches, amigo", "Estoy cansado"],
    "it": ["Dov'è la stazione?", "Grazie mille", "Amo la cioccolata.", "Piove di nuovo",
           "Buona notte, amico mio", "Sono stanco"],
    "pt": ["Onde fica a estação?", "Muito obrigado", "Eu adoro chocolate.", "Está chovendo de novo",
           "Boa noite, meu amigo", "Estou cansado"],
    "nl": ["Waar is het station?", "Dank je wel", "Ik hou van chocolade.", "Het regent alweer",
           "Goedenacht, mijn vriend", "Ik ben moe"],
    "ru": ["Где вокзал?", "Большое спасибо", "Я люблю шоколад.", "Опять идёт дождь"],
    "ja": ["駅はどこですか？", "ありがとう", "東京", "雨がまた降っている"],
    "zh": ["火车站在哪里？", "谢谢", "北京", "又下雨了"],
    "ko": ["역이 어디예요?", "고마워요", "서울", "또 비가 와요"],
}  # fmt: skip


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]


def _seed_records(name: str) -> list[Record]:
    rows = _read_jsonl(DATA / "alpaca-seed" / name)
    return [
        Record(r["id"], r["instruction"], r["instances"][0]["input"], r["instances"][0]["output"])
        for r in rows
    ]


def _dolly() -> tuple[list[Record], list[str]]:
    rows = _read_jsonl(DATA / "dolly" / "dolly-sample.jsonl")
    records = [
        Record(str(i), r["instruction"], r["context"], r["response"]) for i, r in enumerate(rows)
    ]
    return records, [normalise_category(r["category"]) for r in rows]


def _accuracy(pairs: list[tuple[str | None, str | None]]) -> float:
    return sum(a == b for a, b in pairs) / len(pairs) if pairs else float("nan")


# -- category --------------------------------------------------------------------------------------


def _naive_bayes_cv(records: list[Record], gold: list[str], folds: int = 5) -> float:
    """5-fold CV accuracy of a multinomial naive Bayes on instruction words (+ 'has input')."""

    def features(r: Record) -> list[str]:
        words = re.findall(r"[a-z']+", r.instruction.lower())
        return (
            words
            + [f"{a}_{b}" for a, b in itertools.pairwise(words)]
            + (["__has_input__"] * 3 if r.input.strip() else ["__no_input__"])
        )

    feats = [features(r) for r in records]
    order = list(range(len(records)))
    random.Random(0).shuffle(order)
    correct = 0
    for fold in range(folds):
        test = set(order[fold::folds])
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        priors: Counter[str] = Counter()
        vocab: set[str] = set()
        for i in order:
            if i not in test:
                counts[gold[i]].update(feats[i])
                priors[gold[i]] += 1
                vocab.update(feats[i])
        totals = {c: sum(counts[c].values()) for c in priors}
        for i in test:
            best = max(
                priors,
                key=lambda c: (
                    math.log(priors[c])
                    + sum(
                        math.log((counts[c][f] + 1) / (totals[c] + len(vocab)))
                        for f in feats[i]
                        if f in vocab
                    )
                ),
            )
            correct += best == gold[i]
    return correct / len(records)


def bench_category() -> dict[str, float]:
    records, gold = _dolly()
    suggestions = [suggest_category(r.instruction, r.input, r.output) for r in records]
    predicted = [s.category for s in suggestions]
    pairs = list(zip(predicted, gold, strict=True))
    overall = _accuracy(pairs)
    dev = _accuracy(pairs[0::2])
    held_out = _accuracy(pairs[1::2])
    nb = _naive_bayes_cv(records, gold)

    print(f"Category on Dolly ({len(records)} records, human labels mapped to the seven)")
    print(
        f"  overall {overall:.3f}   dev half (rules written on it) {dev:.3f}   "
        f"held-out half (never looked at) {held_out:.3f}"
    )
    print(f"  baseline: naive Bayes on instruction words, 5-fold CV: {nb:.3f}")
    present = [c for c in CATEGORIES if c in gold or c in predicted]
    print("  per category (recall = right / gold; precision = right / predicted):")
    for c in present:
        n_gold = gold.count(c)
        n_pred = predicted.count(c)
        right = sum(p == g == c for p, g in pairs)
        recall = f"{right / n_gold:.2f}" if n_gold else "  - "
        precision = f"{right / n_pred:.2f}" if n_pred else "  - "
        print(
            f"    {c:<22} gold {n_gold:>3}  predicted {n_pred:>3}  "
            f"recall {recall}  precision {precision}"
        )
    print("  confusion (rows: gold, columns: predicted)")
    short = {c: c[:6] for c in present}
    print("    " + " " * 22 + " ".join(f"{short[c]:>6}" for c in present))
    for g in present:
        row = Counter(p for p, gg in pairs if gg == g)
        print(f"    {g:<22}" + " ".join(f"{row[p]:>6}" for p in present))
    right_conf = [s.confidence for s, g in zip(suggestions, gold, strict=True) if s.category == g]
    wrong_conf = [s.confidence for s, g in zip(suggestions, gold, strict=True) if s.category != g]
    print(
        f"  mean confidence: right {sum(right_conf) / len(right_conf):.2f}, "
        f"wrong {sum(wrong_conf) / len(wrong_conf):.2f}"
    )
    for threshold in (0.5, 0.7, 0.9):
        kept = [
            (p, g)
            for (p, g), s in zip(pairs, suggestions, strict=True)
            if s.confidence >= threshold
        ]
        print(
            f"  --min-confidence {threshold}: labels {len(kept) / len(pairs):.0%} of records, "
            f"accuracy on those {_accuracy(kept):.3f}"
        )

    en, ja = _seed_records("seed_tasks.jsonl"), _seed_records("seed_tasks_jp_cleaned.jsonl")
    same = sum(
        suggest_category(a.instruction, a.input, a.output).category
        == suggest_category(b.instruction, b.input, b.output).category
        for a, b in zip(en, ja, strict=True)
    )
    agreement = same / len(en)
    print(f"  seed tasks: English and Japanese version get the same category: {agreement:.3f}")
    return {"overall": overall, "held_out": held_out, "nb_cv": nb, "agreement": agreement}


# -- language --------------------------------------------------------------------------------------


def _language_sets() -> dict[str, tuple[list[Record], str | list[str]]]:
    dolly, _ = _dolly()
    expected_dolly = ["fr" if r.instruction.startswith("Qui était") else "en" for r in dolly]
    return {
        "seed_en": (_seed_records("seed_tasks.jsonl"), "en"),
        "seed_ja": (_seed_records("seed_tasks_jp_cleaned.jsonl"), "ja"),
        "dolly": (dolly, expected_dolly),
    }


def bench_language() -> dict[str, float]:
    sets = _language_sets()
    results: dict[str, float] = {}
    print("\nLanguage (record language from instruction + input + output)")
    print(f"  {'set':<10} {'records':>7}  {'high accuracy':>13}  {'low accuracy':>12}")
    for name, (records, expected) in sets.items():
        row = []
        for low in (False, True):
            found = record_languages(records, [None] * len(records), LanguageDetector(low))
            want = [expected] * len(records) if isinstance(expected, str) else expected
            accuracy = _accuracy(list(zip(found, want, strict=True)))
            row.append(accuracy)
            if not low:
                results[name] = accuracy
                misses = Counter(f for f, w in zip(found, want, strict=True) if f != w)
                if misses:
                    results[f"{name}_misses"] = sum(misses.values())
        print(f"  {name:<10} {len(records):>7}  {row[0]:>13.3f}  {row[1]:>12.3f}")
    texts = [(lang, t) for lang, ts in SHORT.items() for t in ts]
    row = []
    for low in (False, True):
        found = LanguageDetector(low).detect_many([TextQuery(t) for _, t in texts])
        row.append(_accuracy([(f, lang) for f, (lang, _) in zip(found, texts, strict=True)]))
    print(
        f"  {'short':<10} {len(texts):>7}  {row[0]:>13.3f}  {row[1]:>12.3f}"
        "   (sentences of 1-6 words in 11 languages)"
    )
    results["short_high"], results["short_low"] = row
    return results


# -- speed -----------------------------------------------------------------------------------------


def _peak_mb() -> float:
    """Peak resident memory of this process image (ru_maxrss would include the parent's)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _speed_run(mode: str, n: int) -> None:
    """One cold run in this process: a garden with ``n`` records, annotate, write. Prints JSON."""
    import tempfile

    from bonsai.curate.annotate import annotate_dataset
    from bonsai.garden import Garden
    from bonsai.store import Change, RecordStore

    dolly, _ = _dolly()
    pool = dolly + _seed_records("seed_tasks.jsonl") + _seed_records("seed_tasks_jp_cleaned.jsonl")
    records = [
        Record(f"r{i}", pool[i % len(pool)].instruction, pool[i % len(pool)].input,
               pool[i % len(pool)].output)
        for i in range(n)
    ]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        garden = Garden.init(Path(tmp) / "garden")
        store = RecordStore(garden.db)
        store.apply("bench", [Change(None, r) for r in records], kind="import", description="")
        detector = LanguageDetector(low_accuracy=mode == "low")
        start, cpu = time.perf_counter(), time.process_time()
        result = annotate_dataset(store, "bench", AnnotateArgs(), detector=detector)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        start = time.perf_counter()
        rerun = annotate_dataset(store, "bench", AnnotateArgs(), detector=detector)
        rerun_wall = time.perf_counter() - start
        garden.close()
    print(json.dumps({"wall": wall, "cpu": cpu, "rerun_wall": rerun_wall,
                      "changed": result.changed, "rerun_changed": rerun.changed,
                      "stats": result.detector_stats, "peak_mb": _peak_mb()}))  # fmt: skip


def bench_speed(n: int = 16_000) -> dict[str, dict]:
    """Each mode in a fresh process: lingua keeps loaded models for the life of a process."""
    import subprocess

    print(
        f"\nSpeed: annotate {n:,} records in a garden (Dolly and seed tasks, repeated), each mode"
        " in a fresh process; includes reading the records, loading the model and the write"
    )
    out = {}
    for mode in ("high", "low"):
        proc = subprocess.run(
            [sys.executable, __file__, "--speed", mode, str(n)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        run = json.loads(proc.stdout.strip().splitlines()[-1])
        out[mode] = run
        print(
            f"  {mode:<4} accuracy: {run['wall']:5.2f} s wall ({run['wall'] / n * 1000:.3f} s per"
            f" 1k, CPU {run['cpu']:.2f} s), {n / run['wall']:,.0f} records/s, peak memory"
            f" {run['peak_mb']:.0f} MB; a second run (nothing to change) {run['rerun_wall']:.2f} s"
        )
        print(f"       decided by: {run['stats']}")
    return out


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--speed":
        _speed_run(sys.argv[2], int(sys.argv[3]))
        return 0
    if not (DATA / "dolly" / "dolly-sample.jsonl").exists():
        print(f"shared test data not found at {DATA}; nothing to measure")
        return 0
    category = bench_category()
    language = bench_language()
    speed = bench_speed()
    print(
        f"RESULT category_accuracy={category['overall']:.3f}"
        f" category_accuracy_heldout={category['held_out']:.3f}"
        f" category_nb_cv_baseline={category['nb_cv']:.3f}"
        f" category_agreement_en_ja={category['agreement']:.3f}"
        f" language_accuracy_en={language['seed_en']:.3f}"
        f" language_accuracy_ja={language['seed_ja']:.3f}"
        f" language_accuracy_dolly={language['dolly']:.3f}"
        f" language_accuracy_short_high={language['short_high']:.3f}"
        f" language_accuracy_short_low={language['short_low']:.3f}"
        f" records_per_s={16_000 / speed['high']['wall']:.0f}"
        f" seconds_16k={speed['high']['wall']:.2f}"
        f" peak_mb={speed['high']['peak_mb']:.0f}"
        f" records_per_s_low_accuracy={16_000 / speed['low']['wall']:.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
