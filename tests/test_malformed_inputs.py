"""A probe of malformed input files: each is refused with one line naming file, line or row and
field, exit 2, no traceback, and the garden exactly as before.

Every kind tried is listed in CASES (the earlier, narrower tests of each reader stay where they
are); the garden-level ones (a file where a garden should be, a damaged garden.db) follow.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

Content = str | bytes | Callable[[Path], None]


def _snapshot(garden) -> tuple:
    db = garden.db
    return tuple(
        tuple(tuple(row) for row in db.execute(f"SELECT * FROM {table} ORDER BY 1, 2"))
        for table in ("datasets", "records", "changesets", "record_changes")
    )


def _merged_xlsx(path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["instruction", "output"])
    sheet.append(["A", "one answer for two rows"])
    sheet.append(["B", None])
    sheet.merge_cells("B2:B3")
    book.save(path)


def _xlsx_blank_id(path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["id", "instruction", "output"])
    sheet.append(["   ", "A", "1"])
    sheet.append(["  ", "B", "2"])
    book.save(path)


def _parquet(names: list[str], columns: list[list]) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table([pa.array(c) for c in columns], names=names), path)

    return write


def _truncated_parquet(path: Path) -> None:
    _parquet(["instruction", "output"], [["a"], ["b"]])(path)
    path.write_bytes(path.read_bytes()[:60])


def _deep(levels: int) -> str:
    return '{"instruction": "a", "output": "b", "x": ' + "[" * levels + "]" * levels + "}\n"


CASES: list[tuple[str, str, Content, list[str]]] = [
    # CSV structure
    ("csv-unclosed-quote", "q.csv", 'instruction,output\nA,1\nB,"2\nC,3\n', ["line 3", "never"]),
    (
        "csv-stray-quote-swallows-rows",
        "q.csv",
        'instruction,output\n"Hello,world\nB,2\nC,3\nD,"x"\nE,5\n',
        ["line 2", "quoted field"],
    ),
    ("csv-quote-then-text", "q.csv", 'instruction,output\nA,1\n"B"x,2\n', ["line 3"]),
    (
        "csv-quote-runs-rows-together",
        "q.csv",
        'instruction,output,category\n"Hello,1\nB,2\nC",3\nD,4,open_qa\n',
        ["line 2", "stray or unclosed", "field 'instruction'"],
    ),
    ("csv-too-many-cells", "q.csv", "instruction,output\nA,1,extra\n", ["row 2", "3 cells"]),
    ("csv-header-only", "q.csv", "instruction,output\n", ["no records"]),
    ("csv-duplicate-column", "q.csv", "instruction,output,output\nA,1,2\n", ["appears twice"]),
    ("csv-not-utf8", "q.csv", b"instruction,output\nA,caf\xe9\n", ["not valid UTF-8", "line 2"]),
    ("empty-file", "q.jsonl", "", ["empty"]),
    (
        "utf16-file",
        "q.csv",
        "instruction,output\nA,1\n".encode("utf-16"),
        ["not valid UTF-8", "re-save"],
    ),
    ("binary-as-jsonl", "q.jsonl", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ["UTF-8"]),
    ("json-top-level-string", "q.json", '"just a string"', ["line 1", "str"]),
    # empty and invisible content
    ("output-empty-string", "q.jsonl", '{"instruction": "a", "output": ""}\n', ["output", "empty"]),
    ("output-null", "q.jsonl", '{"instruction": "a", "output": null}\n', ["field 'output'"]),
    ("output-whitespace", "q.jsonl", '{"instruction": "a", "output": " \\n\\t"}\n', ["spaces"]),
    ("csv-output-empty-cell", "q.csv", "instruction,output\nA,\n", ["row 2", "field 'output'"]),
    (
        "instruction-zero-width-space",
        "q.jsonl",
        '{"instruction": "\\u200b\\u200b", "output": "b"}\n',
        ["U+200B", "field 'instruction'"],
    ),
    ("instruction-nul", "q.jsonl", '{"instruction": "\\u0000", "output": "b"}\n', ["U+0000"]),
    (
        "instruction-bidi-marks",
        "q.jsonl",
        '{"instruction": "\\u202e\\u200f\\u2066", "output": "b"}\n',
        ["RIGHT-TO-LEFT"],
    ),
    (
        "instruction-hangul-filler",
        "q.jsonl",
        '{"instruction": "\\u3164", "output": "b"}\n',
        ["invisible"],
    ),
    (
        "sharegpt-empty-reply",
        "q.jsonl",
        '{"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": ""}]}\n',
        ["field 'conversations[1]'", "answer is empty"],
    ),
    (
        "sharegpt-invisible-question",
        "q.json",
        '[{"messages": [{"role": "user", "content": "\\u200d"},'
        ' {"role": "assistant", "content": "x"}]}]',
        ["field 'messages[0]'", "U+200D"],
    ),
    (
        "dolly-empty-response",
        "q.jsonl",
        '{"instruction": "a", "context": "", "response": "", "category": "open_qa"}\n',
        ["field 'response'"],
    ),
    ("xlsx-merged-cell", "q.xlsx", _merged_xlsx, ["row 3", "field 'output'", "merged"]),
    # ids
    ("id-spaces-only", "q.csv", "id,instruction,output\n   ,A,1\n", ["field 'id'", "blank"]),
    ("xlsx-id-spaces-only", "q.xlsx", _xlsx_blank_id, ["row 2", "field 'id'"]),
    ("id-line-break", "q.jsonl", '{"id": "a\\nb", "instruction": "a", "output": "b"}\n', ["id"]),
    ("id-twice", "q.csv", "id,instruction,output\na,A,1\na,B,2\n", ["appears twice"]),
    # JSON
    ("json-nested-100k", "q.jsonl", _deep(100_000), ["nested too deeply", "line 1"]),
    ("json-extra-nested-50", "q.jsonl", _deep(50), ["field 'x'", "nested more than"]),
    (
        "json-duplicate-key",
        "q.json",
        '[{"instruction": "a", "output": "b"},\n {"instruction": "a", "output": "b",'
        ' "output": "c"}]',
        ["line 2", "'output' appears twice"],
    ),
    ("json-nan", "q.jsonl", '{"instruction": "a", "output": NaN}\n', ["NaN is not valid"]),
    (
        "json-infinity",
        "q.jsonl",
        '{"instruction": "a", "output": "b", "score": -Infinity}\n',
        ["-Infinity"],
    ),
    ("json-truncated-array", "q.json", '[{"instruction": "a", "output": "b"},', ["line 1"]),
    (
        "jsonl-line-not-object",
        "q.jsonl",
        '{"instruction": "a", "output": "b"}\n[1]\n',
        ["line 2", "list"],
    ),
    ("json-output-object", "q.jsonl", '{"instruction": "a", "output": {"k": 1}}\n', ["dict"]),
    ("lone-surrogate", "q.jsonl", '{"instruction": "a\\ud800", "output": "b"}\n', ["surrogate"]),
    # Parquet
    (
        "parquet-duplicate-column",
        "q.parquet",
        _parquet(["instruction", "output", "output"], [["a"], ["b"], ["c"]]),
        ["'output' appears twice"],
    ),
    (
        "parquet-nan-output",
        "q.parquet",
        _parquet(["instruction", "output"], [["a"], [float("nan")]]),
        ["row 1", "field 'output'", "nan"],
    ),
    (
        "parquet-null-output",
        "q.parquet",
        _parquet(["instruction", "output"], [["a", "b"], ["x", None]]),
        ["row 2", "field 'output'"],
    ),
    ("parquet-truncated", "q.parquet", _truncated_parquet, ["not a readable Parquet"]),
    # other values and files
    ("unknown-category", "q.jsonl", '{"instruction": "a", "output": "b", "category": "x"}\n', []),
    (
        "sharegpt-unknown-speaker",
        "q.jsonl",
        '{"conversations": [{"from": "alien", "value": "hi"}]}\n',
        ["unknown speaker"],
    ),
    ("xlsx-not-a-workbook", "q.xlsx", "instruction,output\nA,1\n", ["not an Excel"]),
]


@pytest.fixture
def seeded(garden, cli, tmp_path: Path):
    path = tmp_path / "seed.jsonl"
    path.write_text('{"id": "a", "instruction": "A", "output": "1"}\n', "utf-8")
    assert cli("data", "import", path, "-d", "d", "--garden", garden.root).exit_code == 0
    return garden


def test_the_probe_tries_many_kinds() -> None:
    assert len({name for name, *_ in CASES}) == len(CASES) >= 25


@pytest.mark.parametrize(
    ("name", "filename", "content", "expected"), CASES, ids=[case[0] for case in CASES]
)
def test_malformed_file_is_refused_cleanly(
    seeded, cli, tmp_path: Path, name: str, filename: str, content: Content, expected: list[str]
) -> None:
    path = tmp_path / filename
    if callable(content):
        content(path)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, "utf-8", errors="surrogatepass")
    before = _snapshot(seeded)
    result = cli("data", "import", path, "-d", "d", "--garden", seeded.root)
    assert result.exit_code == 2, (name, result.output)
    assert "Traceback" not in result.output
    message = result.stderr.strip()
    assert message.startswith("error:") and "\n" not in message, message
    assert filename in message, message
    for part in expected:
        assert part in message, (part, message)
    assert _snapshot(seeded) == before


def test_a_spaces_only_id_never_reaches_an_export(seeded, cli, tmp_path: Path) -> None:
    """It used to become '' and come back as a duplicate; now the import names it."""
    path = tmp_path / "ids.jsonl"
    rows = [{"id": " ", "instruction": "A", "output": "1"}, {"id": "", "instruction": "B"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", "utf-8")
    result = cli("data", "import", path, "-d", "d", "--garden", seeded.root)
    assert result.exit_code == 2 and "field 'id'" in result.stderr


def test_a_multi_line_text_in_a_short_row_is_not_a_stray_quote(seeded, cli, tmp_path) -> None:
    path = tmp_path / "lines.csv"
    path.write_text('instruction,output,category\n"Line one\nline two",answer\n', "utf-8")
    result = cli("data", "import", path, "-d", "d", "--garden", seeded.root)
    assert result.exit_code == 0, result.output


def test_a_stray_quote_in_a_thousand_rows_names_where_it_began(seeded, cli, tmp_path) -> None:
    """It used to swallow the rows up to the next quote into one field, and exit 0."""
    rows = ["instruction,output"]
    for i in range(1000):
        text = f"Question {i}"
        text = f'"Unclosed {i}' if i == 100 else text
        text = f'"The Raven" by Poe, part {i}' if i == 500 else text
        rows.append(f"{text},Answer {i}")
    path = tmp_path / "many.csv"
    path.write_text("\n".join(rows) + "\n", "utf-8")
    result = cli("data", "import", path, "-d", "d", "--garden", seeded.root)
    assert result.exit_code == 2
    assert "many.csv, line 102:" in result.stderr and "on line 502" in result.stderr
