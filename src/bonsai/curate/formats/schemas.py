"""How rows of each schema become flat rows with BONSAI's field names, and records become rows.

Reading:

- **flat** (Alpaca, CSV, Excel, ...): rows already use ``instruction``, ``input``, ``output``.
- **dolly**: ``context`` becomes ``input`` and ``response`` becomes ``output``; the original
  ``category`` is kept in ``source_category`` (see :mod:`.build`).
- **sharegpt**: ``conversations`` (``[{from, value}]``) or OpenAI ``messages``
  (``[{role, content}]``). Each user turn and the assistant turn that answers it become one record;
  the earlier turns of the conversation become its ``input``, as a transcript
  ("User: ...", "Assistant: ..." paragraphs), so a later question keeps the context it needs.
  System prompts go to ``extra['system']``; consecutive user turns are joined; a last user turn
  without an answer is skipped (and counted in the report). With several records per
  conversation, its ``id`` gets a suffix ``-1``, ``-2``, ...
- **self-instruct** seed tasks: one record per item of ``instances``; ``id`` from the task id,
  suffixed ``-1``, ``-2``, ... when a task has several instances; ``name`` and
  ``is_classification`` go to ``extra``.

Writing: Alpaca/JSONL/CSV/Excel/Parquet rows hold ``id``, every editable field and the ``extra``
columns; Dolly rows hold ``id``, instruction/context/response/category; ShareGPT rows hold ``id``,
``conversations`` (a non-empty ``input`` is appended to the user turn after a blank line, so it
does not come back as a separate field), ``category``, ``language`` and the ``extra`` keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bonsai.curate.formats import SourceRow
from bonsai.errors import BonsaiError
from bonsai.records import EDITABLE_FIELDS, Record, describe_invisible, has_visible_text

FLAT_COLUMNS: tuple[str, ...] = ("id", *EDITABLE_FIELDS)

_USER = frozenset({"human", "user"})
_ASSISTANT = frozenset({"gpt", "assistant", "bot", "chatgpt", "model"})
_SYSTEM = frozenset({"system", "developer"})
_TOOL = frozenset({"tool", "function", "observation", "ipython"})


# -- reading ------------------------------------------------------------------------------------


def shape_rows(rows: list[SourceRow], schema: str, path: Path, notes: list[str]) -> list[SourceRow]:
    """Flat rows (one per record) from rows of ``schema``."""
    if schema == "flat":
        return rows
    if schema == "dolly":
        return [_dolly(row) for row in rows]
    if schema == "sharegpt":
        shaped: list[SourceRow] = []
        unanswered = 0
        for row in rows:
            unanswered += _sharegpt(row, path, shaped)
        if unanswered:
            notes.append(
                f"{unanswered} conversation(s) ended with a user turn that has no answer;"
                " those turns were skipped"
            )
        return shaped
    if schema == "self-instruct":
        shaped = []
        for row in rows:
            _self_instruct(row, path, shaped)
        return shaped
    raise ValueError(f"unknown schema {schema!r}")


def _dolly(row: SourceRow) -> SourceRow:
    renames = {"context": "input", "response": "output"}
    values = {}
    for key, value in row.values.items():
        target = renames.get(key, key)
        values[target if target not in row.values else key] = value
    return SourceRow(values, line=row.line, row=row.row)


def _turn_text(content: Any, path: Path, row: SourceRow, field: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts: keep the text ones
        parts = [
            part.get("text", "")
            for part in content
            if isinstance(part, dict) and part.get("type", "text") == "text"
        ]
        return "\n".join(p for p in parts if isinstance(p, str))
    raise BonsaiError(
        f"a turn's text must be a string, not {type(content).__name__}",
        file=path,
        field=field,
        **row.where(),
    )


def _turns(row: SourceRow, path: Path) -> tuple[str, list[tuple[str, str]]]:
    key = "conversations" if "conversations" in row.values else "messages"
    conversation = row.values.get(key)
    if key not in row.values:
        found = ", ".join(sorted(row.values)) or "nothing"
        raise BonsaiError(
            f"a ShareGPT record needs 'conversations' or 'messages' (found: {found})",
            file=path,
            hint="--map SRC=conversations renames a column",
            **row.where(),
        )
    if not isinstance(conversation, list) or not conversation:
        raise BonsaiError("must be a non-empty list of turns", file=path, field=key, **row.where())
    turns = []
    for index, turn in enumerate(conversation):
        field = f"{key}[{index}]"
        if not isinstance(turn, dict):
            raise BonsaiError("a turn must be an object", file=path, field=field, **row.where())
        role = turn.get("from", turn.get("role"))
        role = role.strip().lower() if isinstance(role, str) else None
        known = _USER | _ASSISTANT | _SYSTEM | _TOOL
        if role not in known:
            raise BonsaiError(
                f"unknown speaker {turn.get('from', turn.get('role'))!r}",
                file=path,
                field=f"{field}.{'from' if 'from' in turn else 'role'}",
                hint=f"known speakers: {', '.join(sorted(known))}",
                **row.where(),
            )
        text = _turn_text(turn.get("value", turn.get("content")), path, row, field)
        turns.append((role, text))
    return key, turns


def _check_visible(text: str, what: str, path: Path, row: SourceRow, field: str) -> None:
    if has_visible_text(text):
        return
    shown = (
        "empty" if not text.strip() else f"only invisible characters ({describe_invisible(text)})"
    )
    raise BonsaiError(f"the {what} is {shown}", file=path, field=field, **row.where())


def _sharegpt(row: SourceRow, path: Path, out: list[SourceRow]) -> int:
    """Append one flat row per answered user turn; return 1 if the last user turn is unanswered."""
    key, turns = _turns(row, path)
    shared = {k: v for k, v in row.values.items() if k not in (key, "id")}
    system: list[str] = [shared.pop("system")] if isinstance(shared.get("system"), str) else []
    context: list[str] = []
    pending: list[str] | None = None
    pairs: list[tuple[str, str, str]] = []
    for index, (role, text) in enumerate(turns):
        if role in _SYSTEM:
            system.append(text)
        elif role in _USER:
            _check_visible(text, "question", path, row, f"{key}[{index}]")
            pending = [*pending, text] if pending is not None else [text]
        elif role in _ASSISTANT:
            if pending is None:
                context.append(f"Assistant: {text}")
                continue
            _check_visible(text, "answer", path, row, f"{key}[{index}]")
            question = "\n\n".join(pending)
            pairs.append((question, "\n\n".join(context), text))
            context += [f"User: {question}", f"Assistant: {text}"]
            pending = None
        else:
            context.append(f"Tool: {text}")
    base_id = row.values.get("id")
    for number, (question, earlier, answer) in enumerate(pairs, 1):
        values = dict(shared)
        if system:
            values["system"] = "\n\n".join(system)
        values.update(instruction=question, input=earlier, output=answer)
        if base_id not in (None, ""):
            values["id"] = f"{base_id}-{number}" if len(pairs) > 1 else base_id
        out.append(SourceRow(values, line=row.line, row=row.row))
    if not pairs:
        raise BonsaiError(
            "the conversation has no user turn followed by an answer",
            file=path,
            field=key,
            **row.where(),
        )
    return 1 if pending is not None else 0


def _self_instruct(row: SourceRow, path: Path, out: list[SourceRow]) -> None:
    instances = row.values.get("instances")
    if not isinstance(instances, list) or not instances:
        raise BonsaiError(
            "a self-instruct task needs a non-empty list 'instances' of {input, output}",
            file=path,
            field="instances",
            **row.where(),
        )
    task = {k: v for k, v in row.values.items() if k not in ("instances", "id")}
    base_id = row.values.get("id")
    for number, instance in enumerate(instances, 1):
        if not isinstance(instance, dict):
            raise BonsaiError(
                "an instance must be an object with input and output",
                file=path,
                field=f"instances[{number - 1}]",
                **row.where(),
            )
        values = dict(task)
        values.update(instance)
        values.setdefault("input", "")
        if base_id not in (None, ""):
            values["id"] = f"{base_id}-{number}" if len(instances) > 1 else base_id
        out.append(SourceRow(values, line=row.line, row=row.row))


# -- writing ------------------------------------------------------------------------------------


def extra_columns(records: Sequence[Record]) -> list[str]:
    """Keys of ``extra`` over all records, in the order they first appear."""
    seen: dict[str, None] = {}
    for record in records:
        for key in record.extra:
            if key not in seen:
                if key in FLAT_COLUMNS:
                    raise BonsaiError(
                        f"record '{record.id}': extra key '{key}' clashes with a field name"
                    )
                seen[key] = None
    return list(seen)


def flat_row(record: Record) -> dict[str, Any]:
    return {"id": record.id, **record.editable(), **record.extra}


def dolly_row(record: Record) -> dict[str, Any]:
    return {
        "id": record.id,
        "instruction": record.instruction,
        "context": record.input,
        "response": record.output,
        "category": record.category or "",
    }


def sharegpt_row(record: Record) -> dict[str, Any]:
    extra = dict(record.extra)
    system = extra.pop("system", None)
    turns = [{"from": "system", "value": system}] if isinstance(system, str) and system else []
    question = f"{record.instruction}\n\n{record.input}" if record.input else record.instruction
    turns += [{"from": "human", "value": question}, {"from": "gpt", "value": record.output}]
    row: dict[str, Any] = {"id": record.id, "conversations": turns}
    row.update(category=record.category, language=record.language)
    for key, value in extra.items():
        row.setdefault(key, value)
    return row
