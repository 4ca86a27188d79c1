"""Language detection in batches: a large batch (lingua on all cores, after loading the
Latin-script models once) and a small one (text by text) give what single calls give."""

from __future__ import annotations

from bonsai.curate.language import PARALLEL_MIN_TEXTS, LanguageDetector, TextQuery

SENTENCES = {
    "fr": "Le chat numéro {} dort sur le canapé rouge du salon.",
    "de": "Die Katze Nummer {} schläft auf dem roten Sofa im Wohnzimmer.",
    "es": "El gato número {} duerme en el sofá rojo de la sala.",
}


def texts(per_language: int) -> list[str]:
    return [s.format(i) for s in SENTENCES.values() for i in range(per_language)]


def test_a_large_batch_matches_single_calls() -> None:
    batch_texts = texts(PARALLEL_MIN_TEXTS // 2)
    batch_texts += batch_texts[:10]  # repeated texts are detected once, answered for each
    detector = LanguageDetector()
    batch = detector.detect_many([TextQuery(t) for t in batch_texts])
    assert detector._warm  # went the parallel way, models loaded first
    single = LanguageDetector()
    assert batch == [single.detect(t) for t in batch_texts]
    assert not single._warm
    expected = [code for code in SENTENCES for _ in range(PARALLEL_MIN_TEXTS // 2)]
    assert batch == expected + expected[:10]
    assert detector.stats["lingua"] == len(batch_texts)


def test_a_small_batch_is_detected_text_by_text() -> None:
    detector = LanguageDetector()
    small = texts(3)
    assert detector.detect_many([TextQuery(t) for t in small]) == [
        code for code in SENTENCES for _ in range(3)
    ]
    assert not detector._warm
