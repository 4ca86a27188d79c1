"""Credentials written into ``--base-url`` never reach a manifest, the database or the screen."""

from __future__ import annotations

from pathlib import Path

from teach_support import add_records, free_port, make_records

from bonsai.garden import Garden
from bonsai.testing import ScriptedServer

SECRETS = ("sk-secret-user", "sk-secret-query")


def with_credentials(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://me:{SECRETS[0]}@{rest}?api_key={SECRETS[1]}"


def garden_text(garden: Garden) -> str:
    """Everything the garden keeps that could hold the URL: run files and the database."""
    parts = [p.read_text(errors="replace") for p in Path(garden.runs_dir).rglob("*.json")]
    for table in ("teacher_runs", "teacher_calls"):
        try:
            rows = garden.db.execute(f"SELECT * FROM {table}").fetchall()
        except Exception:  # a table another version names differently
            continue
        parts += [str(tuple(row)) for row in rows]
    return "\n".join(parts)


def test_credentials_in_the_base_url_are_kept_nowhere(garden: Garden, cli) -> None:
    add_records(garden, "cats", make_records(2))
    with ScriptedServer() as server:
        url = with_credentials(server.url)
        result = cli(
            "teach", "-d", "cats", "-g", garden.root,
            "--backend", "openai", "--base-url", url, "--model", "scripted",
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "***@127.0.0.1" in result.stdout
    kept = garden_text(garden)
    assert "api_key=***" in kept
    for secret in SECRETS:
        assert secret not in result.output and secret not in kept


def test_credentials_are_not_printed_in_a_connection_error(garden: Garden, cli) -> None:
    add_records(garden, "cats", make_records(2))
    url = with_credentials(f"http://127.0.0.1:{free_port()}/v1")
    result = cli(
        "teach", "-d", "cats", "-g", garden.root,
        "--backend", "openai", "--base-url", url, "--model", "scripted",
    )  # fmt: skip
    assert result.exit_code == 2 and "cannot reach the teacher at" in result.stderr
    for secret in SECRETS:
        assert secret not in result.output and secret not in garden_text(garden)
