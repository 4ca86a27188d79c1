"""`bonsai.curate.tokens`: token counts equal to encoding each text whole, batched and cached."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bonsai.curate.tokens import TokenCounter, record_text, token_counter
from bonsai.errors import BonsaiError
from bonsai.records import Record

SAMPLE = Path(__file__).resolve().parents[1] / "src" / "bonsai" / "sample" / "cat-care.jsonl"

TEXTS = [
    "Mochi is a six-year-old tabby. She eats wet food twice a day.",
    "もちは六歳の猫です。毎日ブラッシングをします。 Translate into English: 猫",
    "麻糬每天需要喝水。  请带猫去看兽医 (Dr. Tanaka) at 10:30.\n\n- one\n-  two   ",
    "   spaces first, and     runs   of them ",
    "",
    "x",
]


def whole(tokenizer, texts: list[str]) -> list[int]:
    return [len(tokenizer.encode(t, add_special_tokens=False).ids) for t in texts]


@pytest.fixture
def tiny_tokenizer(tiny_model_dir: Path):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(tiny_model_dir / "tokenizer.json"))


def test_counts_equal_whole_text_encoding(tiny_tokenizer) -> None:
    counter = TokenCounter(tiny_tokenizer)
    assert counter.by_pieces  # byte-level BPE never joins across a space: pieces are exact
    assert counter(TEXTS) == whole(tiny_tokenizer, TEXTS)
    many = [f"{t} {i}" for i in range(50) for t in TEXTS]
    assert counter(many) == whole(tiny_tokenizer, many)


def test_counts_are_cached_by_content(tiny_tokenizer) -> None:
    counter = TokenCounter(tiny_tokenizer)
    first = counter(TEXTS)
    cached = len(counter._texts)
    assert cached == len(set(TEXTS))
    assert counter([*TEXTS, *TEXTS]) == first + first
    assert len(counter._texts) == cached  # nothing new was counted


def test_falls_back_when_pieces_disagree() -> None:
    """A SentencePiece-style tokenizer that prepends "▁" to its input counts one more token for
    every piece; the probe notices and the counter encodes whole texts instead."""
    from tokenizers import Tokenizer, models, normalizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Sequence(
        [normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")]
    )
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>"], show_progress=False)
    tokenizer.train_from_iterator(TEXTS * 10, trainer=trainer)
    counter = TokenCounter(tokenizer)
    assert not counter.by_pieces
    assert counter(TEXTS) == whole(tokenizer, TEXTS)


def test_token_counter_by_model_name(tiny_model_dir: Path, tmp_path: Path) -> None:
    counter = token_counter(str(tiny_model_dir))
    assert token_counter(str(tiny_model_dir)) is counter  # built once per process
    assert counter(["Mochi naps."]) == whole(counter.tokenizer, ["Mochi naps."])
    with pytest.raises(BonsaiError, match=r"no config\.json"):
        token_counter(str(tmp_path))


def test_record_text_joins_what_the_model_sees() -> None:
    record = Record("a", "Q?", input="", output="A.", reasoning="You should say A.")
    assert record_text(record) == "Q?\nA.\nYou should say A."


@pytest.mark.slow
def test_embedded_student_counts_match_its_tokenizer() -> None:
    """The embedded Gemma tokenizer: piece counts equal AutoTokenizer's on the sample data."""
    from bonsai.student import load_tokenizer

    if not SAMPLE.exists():
        pytest.skip("the sample dataset is not there yet")
    records = [
        Record.from_dict(json.loads(line)) for line in SAMPLE.read_text("utf-8").splitlines()
    ]
    texts = [record_text(r) for r in records] + TEXTS
    counter = token_counter("embedded:gemma-3-270m")
    assert counter.by_pieces
    reference = load_tokenizer("embedded:gemma-3-270m")
    expected = [len(ids) for ids in reference(texts, add_special_tokens=False)["input_ids"]]
    assert counter(texts) == expected
