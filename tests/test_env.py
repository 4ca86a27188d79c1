"""Every environment variable BONSAI reads is declared, with its meaning, in bonsai.env."""

from __future__ import annotations

import re
from pathlib import Path

import bonsai
from bonsai import env

EXAMPLES = {"BONSAI_API_KEY", "BONSAI_KEY"}
"""Names used in help texts and docs as an example of an ``--api-key-env`` variable."""


def test_every_variable_named_in_the_code_is_declared() -> None:
    declared = {v.name for v in env.VARIABLES}
    root = Path(bonsai.__file__).parent
    named = {
        match
        for path in root.rglob("*.py")
        for match in re.findall(r"\bBONSAI_[A-Z_]+\b", path.read_text(encoding="utf-8"))
    }
    assert named - declared - EXAMPLES == set()
    assert all(v.doc for v in env.VARIABLES)


def test_a_variable_is_read_as_set(monkeypatch) -> None:
    monkeypatch.delenv(env.THREADS.name, raising=False)
    assert env.THREADS.get() is None and env.THREADS.get("") == ""
    monkeypatch.setenv(env.THREADS.name, "3")
    assert env.THREADS.get() == "3"
