"""`bonsai.curate.stats` and `bonsai data stats`: the tables and the PNG."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from bonsai.curate.stats import LengthSummary, compute_stats
from bonsai.curate.tokens import TokenCounter
from bonsai.records import Record
from bonsai.store import Change, RecordStore

SAMPLE = Path(__file__).resolve().parents[1] / "src" / "bonsai" / "sample" / "cat-care.jsonl"

RECORDS = [
    Record("a", "How old is Mochi?", output="Six.", category="open_qa", language="en"),
    Record("b", "もちは何歳？", output="六歳です。", category="open_qa", language="ja"),
    Record("c", "麻糬几岁？", output="六岁。", category="open_qa", language="zh"),
    Record("d", "Translate: 猫", output="cat", category="translation", language="ja-en"),
    Record(
        "e",
        "Write a poem about naps.",
        output="Sun, then sleep. " * 5,
        category="creative",
        language="en",
    ),
    Record("f", "Unlabelled?", output="Yes."),
]


@pytest.fixture
def counter(tiny_model_dir: Path) -> TokenCounter:
    from tokenizers import Tokenizer

    return TokenCounter(Tokenizer.from_file(str(tiny_model_dir / "tokenizer.json")))


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_counts_per_category_and_language() -> None:
    stats = compute_stats(RECORDS)
    assert stats.records == 6
    assert stats.categories == ["open_qa", "translation", "creative", "-"]
    assert stats.counts["open_qa"] == {"en": 1, "ja": 1, "zh": 1}
    assert stats.counts["-"] == {"-": 1}
    assert stats.languages[0] == "en"  # most records first
    assert stats.tokens is None and stats.lengths() == {}


def test_token_lengths_per_category(counter: TokenCounter) -> None:
    stats = compute_stats(RECORDS, counter)
    direct = {
        r.id: len(counter.tokenizer.encode("\n".join(p for p in (r.instruction, r.output) if p),
                                           add_special_tokens=False).ids)
        for r in RECORDS
    }  # fmt: skip
    assert stats.tokens is not None
    assert sorted(stats.tokens["open_qa"]) == sorted(direct[i] for i in "abc")
    lengths = stats.lengths()
    assert lengths["creative"] == LengthSummary(
        1, direct["e"], direct["e"], direct["e"], direct["e"]
    )
    everything = sorted(direct.values())
    assert lengths["all"].records == 6
    assert (lengths["all"].min, lengths["all"].max) == (everything[0], everything[-1])
    json.dumps(stats.to_json())  # serialisable


def test_quantiles_match_numpy() -> None:
    import numpy as np

    values = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5]
    summary = LengthSummary.of(values)
    assert summary.median == float(np.median(values))
    assert summary.p90 == pytest.approx(float(np.quantile(values, 0.9)))


@pytest.fixture
def tiny_garden(garden, tiny_model_dir: Path):
    garden.config.student.base_model = str(tiny_model_dir)
    garden.config.save(garden.config_path)
    return garden


def sample_records() -> list[Record]:
    if not SAMPLE.exists():
        return RECORDS
    return [Record.from_dict(json.loads(line)) for line in SAMPLE.read_text("utf-8").splitlines()]


def test_cli_tables_and_default_png(tiny_garden, cli) -> None:
    records = sample_records()
    RecordStore(tiny_garden.db).apply(
        "猫 care", [Change(None, r) for r in records], kind="import", description="sample"
    )
    result = cli("data", "stats", "-d", "猫 care", "-g", tiny_garden.root)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"{len(records):,} records" in out
    assert "open_qa" in out and "p90" in out and "median" in out
    png = tiny_garden.exports_dir / "猫_care-stats.png"
    assert f"Picture: {png}" in out.replace("\n", "")
    width, height = png_size(png)
    assert width > 800 and height > 600
    assert png.stat().st_size > 20_000  # a drawn picture, not an empty canvas
    assert not list(tiny_garden.exports_dir.glob(".*"))  # no temporary file left behind


def test_cli_png_option_and_split_line(tiny_garden, cli, tmp_path: Path) -> None:
    store = RecordStore(tiny_garden.db)
    store.apply("ds", [Change(None, r) for r in RECORDS], kind="import", description="t")
    assert cli("data", "split", "-d", "ds", "--val", "0.3", "-g", tiny_garden.root).exit_code == 0
    target = tmp_path / "pictures" / "ds.png"
    result = cli("data", "stats", "-d", "ds", "--png", target, "-g", tiny_garden.root)
    assert result.exit_code == 0, result.output
    assert "Split: train" in result.stdout and "val" in result.stdout
    assert png_size(target)[0] > 800
    result = cli("data", "stats", "-d", "ds", "--no-tokens", "--png", target, "-g",
                 tiny_garden.root)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Tokens per record" not in result.stdout


def test_cli_unknown_dataset(tiny_garden, cli) -> None:
    result = cli("data", "stats", "-d", "nope", "-g", tiny_garden.root)
    assert result.exit_code == 2
    assert "no dataset named 'nope'" in result.stderr
    assert "Traceback" not in result.output
    assert not list(tiny_garden.exports_dir.iterdir())
