"""Reading a text file as UTF-8, with errors that say where a bad byte is and what to do."""

from __future__ import annotations

import codecs
from pathlib import Path

from bonsai.errors import BonsaiError

UTF8_HINT = "re-save the file as UTF-8 (in Excel: 'CSV UTF-8'; in an editor: encoding UTF-8)"


def check_file(path: Path) -> None:
    """A clear error for a path that does not exist or is not a regular file."""
    if not path.exists():
        raise BonsaiError("no such file or folder", file=path)
    if not path.is_file():
        raise BonsaiError("not a file", file=path)


def read_text(path: Path) -> str:
    """The whole file as text; a UTF-8 byte order mark is dropped, an empty file is refused."""
    check_file(path)
    data = path.read_bytes()
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise BonsaiError(
            f"not valid UTF-8: byte 0x{data[exc.start]:02x} at byte offset {exc.start}",
            file=path,
            line=line,
            column=column,
            hint=UTF8_HINT,
        ) from None
    del data  # a big file should not stay in memory twice
    if not text.strip():
        raise BonsaiError("the file is empty", file=path)
    return text
