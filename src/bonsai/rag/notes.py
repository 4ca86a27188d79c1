"""Adding notes to the knowledge base: markdown and text files, folders, a dataset's records.

``add_paths`` and ``add_dataset`` plan every document first (read, check, chunk), embed only the
chunk texts that have no vector yet for the model, then write everything in one transaction: a
bad file named on its own stops the whole add before anything is written (one found in a folder
is reported and left out), and re-adding unchanged files writes and embeds nothing. A folder's
walk never leaves the folder through a symbolic link. A changed document's chunks are replaced
as a whole; paragraphs that did not change keep their vectors (vectors are keyed by content hash).
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bonsai.db import transaction
from bonsai.errors import BonsaiError
from bonsai.garden import Garden
from bonsai.rag import index
from bonsai.rag.chunking import Chunk, ChunkConfig, chunk_markdown, chunk_text, markdown_title
from bonsai.rag.embed import BATCH_SIZE, Encoder, default_model_name, load_encoder
from bonsai.records import Record
from bonsai.store import RecordStore

MARKDOWN_SUFFIXES = frozenset({".md", ".markdown", ".mdown", ".mkd"})
TEXT_SUFFIXES = MARKDOWN_SUFFIXES | {".txt", ".text"}
"""Files a folder contributes; other files in it are skipped (and counted)."""
DATASET_PREFIX = "dataset:"

Progress = Callable[[int, int], None]
"""Called as ``progress(done, total)`` while chunks are embedded."""


@dataclass
class PlannedDocument:
    source: str
    kind: str
    title: str
    content_hash: str
    chunks: list[Chunk]


@dataclass
class AddReport:
    """What an add did."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Files in the folders given that are not markdown or text."""
    empty: list[str] = field(default_factory=list)
    """Files with no text (nothing to store)."""
    removed: list[str] = field(default_factory=list)
    """Notes whose file is gone from a folder that was added again."""
    links: list[str] = field(default_factory=list)
    """Symbolic links in the folders that lead outside them: not followed, nothing added."""
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    """(source, why) of files in the folders that could not be read: left out."""
    chunks: int = 0
    """Chunks written (of added and updated documents)."""
    embedded: int = 0
    """Texts the encoder was run on: chunks, and the statements of note chunks."""
    model: str = ""


# -- files --------------------------------------------------------------------------------------


def source_for(garden: Garden, path: Path) -> str:
    """How a file is named in the knowledge base: relative to the garden if inside it."""
    path = path.expanduser().resolve()
    try:
        return path.relative_to(garden.root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


@dataclass
class Collected:
    """What a walk over the files and folders given found."""

    files: list[Path] = field(default_factory=list)
    """Markdown and text files to read."""
    skipped: list[Path] = field(default_factory=list)
    """Other files in the folders (not markdown or text)."""
    links: list[Path] = field(default_factory=list)
    """Symbolic links in the folders that lead out of the folder (or nowhere): not followed."""


def collect_files(paths: Iterable[str | Path]) -> Collected:
    """The files of the files and folders given (folders searched recursively).

    A folder's walk stays inside the folder: a symbolic link in it (to a file or a folder) is
    followed only when its target lies inside the same folder, and the others are listed in
    :attr:`Collected.links`. A file named on its own is taken as it is, link or not.
    """
    found = Collected()
    for given in paths:
        path = Path(given).expanduser()
        if not path.exists() and not path.is_symlink():
            raise BonsaiError("no such file or folder", file=path)
        if path.is_dir():
            before = len(found.files)
            _walk(path, found)
            if len(found.files) == before:
                raise BonsaiError(
                    "no markdown or text files in this folder",
                    file=path,
                    hint=f"notes are files ending in {', '.join(sorted(TEXT_SUFFIXES))}",
                )
        elif path.exists():
            found.files.append(path)
        else:
            raise BonsaiError("a link to nothing", file=path)
    found.files = list({p.resolve(): p for p in found.files}.values())
    return found


def _walk(folder: Path, found: Collected) -> None:
    root = folder.resolve()
    for dirpath, dirnames, filenames in os.walk(folder):  # never follows links to folders
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in [d for d in dirnames if (here / d).is_symlink()]:
            found.links.append(here / name)  # a linked folder: not entered
        for name in sorted(filenames):
            item = here / name
            if name.startswith("."):
                continue
            if item.is_symlink():
                target = item.resolve()
                if not target.is_file() or not target.is_relative_to(root):
                    found.links.append(item)
                    continue
            (found.files if item.suffix.lower() in TEXT_SUFFIXES else found.skipped).append(item)


def read_text(path: Path) -> str:
    """The file's text; a clear error for binary or non-UTF-8 content."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BonsaiError(f"cannot read the file: {exc.strerror}", file=path) from exc
    if b"\x00" in data[:8192]:
        raise BonsaiError(
            "binary file, not text", file=path, hint="notes are markdown or plain text (UTF-8)"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise BonsaiError(
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x})",
            file=path,
            line=line,
            column=column,
            hint="save the file as UTF-8",
        ) from exc


def plan_file(garden: Garden, path: Path, config: ChunkConfig) -> PlannedDocument:
    text = read_text(path)
    markdown = path.suffix.lower() in MARKDOWN_SUFFIXES
    chunks = chunk_markdown(text, config) if markdown else chunk_text(text, config)
    title = (markdown_title(text) if markdown else None) or path.stem
    digest = hashlib.sha256(f"{config.fingerprint()}\x00file\x00{text}".encode()).hexdigest()
    return PlannedDocument(source_for(garden, path), "file", title, digest[:32], chunks)


# -- records ------------------------------------------------------------------------------------


def record_text(record: Record) -> str:
    """A record as one chunk: instruction, input (if any) and output, as paragraphs."""
    parts = [record.instruction, record.input, record.output]
    return "\n\n".join(p.strip() for p in parts if p and p.strip())


def plan_dataset(garden: Garden, name: str, config: ChunkConfig) -> PlannedDocument:
    records = RecordStore(garden.db).records(name)  # raises a clear error for an unknown name
    texts = [(r.id, record_text(r)) for r in records]
    chunks = [Chunk(i, text, anchor=rid) for i, (rid, text) in enumerate(t for t in texts if t[1])]
    digest = hashlib.sha256(config.fingerprint().encode() + b"\x00dataset")
    for c in chunks:
        digest.update(f"\x00{c.anchor}\x00{c.content_hash}".encode())
    return PlannedDocument(
        f"{DATASET_PREFIX}{name}", "dataset", name, digest.hexdigest()[:32], chunks
    )


# -- adding -------------------------------------------------------------------------------------


def add_paths(
    garden: Garden,
    paths: Sequence[str | Path],
    *,
    encoder: Encoder | None = None,
    config: ChunkConfig | None = None,
    progress: Progress | None = None,
) -> AddReport:
    """Add (or refresh) markdown/text files and folders.

    A file named on its own that cannot be read stops the add before anything is written. In a
    folder, such a file (no permission, not UTF-8, binary) is reported in
    :attr:`AddReport.unreadable` and left out, and the rest is added; links out of the folder
    are reported in :attr:`AddReport.links` and not followed. Adding a folder again also drops
    the notes under it whose files are no longer found there.
    """
    config = config or ChunkConfig()
    found = collect_files(paths)
    named = {Path(p).expanduser().resolve() for p in paths if not Path(p).expanduser().is_dir()}
    report = AddReport(
        skipped=[source_for(garden, p) for p in found.skipped],
        links=[_link_label(garden, p) for p in found.links],
    )
    planned = []
    kept: set[str] = set()
    for path in found.files:
        try:
            planned.append(plan_file(garden, path, config))
        except BonsaiError as exc:
            if path.resolve() in named:
                raise
            where = f"line {exc.line}: " if exc.line else ""
            report.unreadable.append((source_for(garden, path), where + exc.message))
            kept.add(source_for(garden, path))  # what was stored of it stays as it was
    # Adding a folder again brings the knowledge base in line with it: notes under the folder
    # that this walk did not find (file deleted, renamed, or now a link out) go too.
    found_now = {doc.source for doc in planned} | kept
    stored = index.document_hashes(garden.db)
    for folder in (Path(p).expanduser() for p in paths):
        if folder.is_dir():
            prefix = source_for(garden, folder) + "/"
            report.removed.extend(s for s in stored if s.startswith(prefix) and s not in found_now)
    report.removed = list(dict.fromkeys(report.removed))
    return _apply(garden, planned, encoder, progress, report)


def _link_label(garden: Garden, link: Path) -> str:
    """A skipped link as the person sees it: where it is, not where it points."""
    absolute = link.parent.resolve() / link.name
    try:
        return absolute.relative_to(garden.root.resolve()).as_posix()
    except ValueError:
        return absolute.as_posix()


def _source_path(garden: Garden, source: str) -> Path:
    path = Path(source)
    return path if path.is_absolute() else garden.root / path


def add_dataset(
    garden: Garden,
    name: str,
    *,
    encoder: Encoder | None = None,
    config: ChunkConfig | None = None,
    progress: Progress | None = None,
) -> AddReport:
    """Add (or refresh) a dataset's records, one chunk each, cited as ``dataset:NAME#ID``."""
    planned = [plan_dataset(garden, name, config or ChunkConfig())]
    return _apply(garden, planned, encoder, progress, AddReport())


def add_text(
    garden: Garden,
    text: str,
    *,
    title: str | None = None,
    encoder: Encoder | None = None,
) -> Path:
    """Keep ``text`` as a new markdown note in the garden's notes folder and add it.

    For what a person asks the garden to remember (chat's "remember this"). The note is an
    ordinary file the person can edit; re-adding it after an edit refreshes its chunks.
    Returns the file written.
    """
    from bonsai.util.atomic import atomic_write_text

    if not text.strip():
        raise BonsaiError("nothing to remember: the text is empty")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    slug = re.sub(r"[^\w]+", "-", (title or text.strip().splitlines()[0]).lower()).strip("-")
    path = garden.notes_dir / f"{stamp}-{slug[:40] or 'note'}.md"
    counter = 1
    while path.exists():
        counter += 1
        path = path.with_name(f"{stamp}-{slug[:40] or 'note'}-{counter}.md")
    body = f"# {title}\n\n{text.strip()}\n" if title else f"{text.strip()}\n"
    atomic_write_text(path, body)
    add_paths(garden, [path], encoder=encoder)
    return path


def embed_missing(
    garden: Garden, *, encoder: Encoder | None = None, progress: Progress | None = None
) -> AddReport:
    """Embed every stored chunk that has no vector for the encoder's model (after a switch)."""
    return _apply(garden, [], encoder, progress, AddReport())


def _apply(
    garden: Garden,
    planned: list[PlannedDocument],
    encoder: Encoder | None,
    progress: Progress | None,
    report: AddReport,
) -> AddReport:
    conn = garden.db
    model = encoder.name if encoder else default_model_name()
    report.model = model
    stored = index.document_hashes(conn)
    to_write: list[PlannedDocument] = []
    for doc in planned:
        if not doc.chunks and doc.source not in stored:
            report.empty.append(doc.source)
        elif stored.get(doc.source) == doc.content_hash:
            report.unchanged.append(doc.source)
        else:
            to_write.append(doc)
            (report.updated if doc.source in stored else report.added).append(doc.source)
    # Texts to embed: new chunk texts (and a note chunk's statements), plus stored chunks and
    # statements still without a vector for this model.
    texts = index.chunks_without_vectors(conn, model)
    for doc in to_write:
        for chunk in doc.chunks:
            texts.setdefault(chunk.content_hash, chunk.embedding_text())
            if doc.kind == "file":
                for content_hash, text in chunk.statements():
                    texts.setdefault(content_hash, text)
    have = index.embedded_hashes(conn, model, texts)
    todo = [(h, t) for h, t in texts.items() if h not in have]
    if todo:  # the model is loaded only when there is something to embed
        encoder = encoder or load_encoder(model)
        vectors = _encode(encoder, [t for _, t in todo], progress)
    report.embedded = len(todo)
    report.chunks = sum(len(doc.chunks) for doc in to_write)
    if not to_write and not todo and not report.removed:
        return report
    with transaction(conn):
        for source in report.removed:
            index.delete_document(conn, _document_id(conn, source))
        for doc in to_write:
            index.write_document(
                conn,
                source=doc.source,
                kind=doc.kind,
                title=doc.title,
                content_hash=doc.content_hash,
                chunks=doc.chunks,
            )
        if todo:
            index.store_vectors(conn, model, [h for h, _ in todo], vectors)
        index.prune_vectors(conn)
    return report


def _document_id(conn: sqlite3.Connection, source: str) -> int:
    row = conn.execute("SELECT id FROM knowledge_documents WHERE source = ?", (source,)).fetchone()
    return int(row[0])


def _encode(encoder: Encoder, texts: list[str], progress: Progress | None) -> np.ndarray:
    # Batches of similar length: an encoder pads a batch to its longest text.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), encoder.dim), np.float32)
    for start in range(0, len(texts), BATCH_SIZE):
        batch = order[start : start + BATCH_SIZE]
        out[batch] = encoder.encode_passages([texts[i] for i in batch])
        if progress:
            progress(min(start + BATCH_SIZE, len(texts)), len(texts))
    return out


# -- listing and removing -----------------------------------------------------------------------


def list_documents(garden: Garden, *, model: str | None = None) -> list[index.DocumentInfo]:
    """Every document with its chunk count and how many chunks have a vector for ``model``."""
    from bonsai.rag.embed import default_model_name

    return index.list_documents(garden.db, model or default_model_name())


def remove(garden: Garden, names: Sequence[str]) -> list[str]:
    """Remove documents by source (a path as given to add, a folder, or ``dataset:NAME``).

    All or nothing: an unknown name removes nothing. Returns the sources removed.
    """
    conn = garden.db
    docs = dict(conn.execute("SELECT source, id FROM knowledge_documents").fetchall())
    chosen: dict[str, int] = {}
    for name in names:
        if name.startswith(DATASET_PREFIX):
            keys = [name] if name in docs else []
        else:
            source = source_for(garden, Path(name))
            keys = [source] if source in docs else [s for s in docs if s.startswith(source + "/")]
        if not keys:
            raise BonsaiError(
                "not in the knowledge base", file=name, hint="`bonsai notes list` shows what is"
            )
        chosen.update((key, docs[key]) for key in keys)
    with transaction(conn):
        for doc_id in chosen.values():
            index.delete_document(conn, doc_id)
        index.prune_vectors(conn)
    return sorted(chosen)
