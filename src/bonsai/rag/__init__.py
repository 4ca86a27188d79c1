"""The knowledge base: the user's notes and records, chunked, indexed and retrieved.

Modules: :mod:`~bonsai.rag.chunking` (cutting text), :mod:`~bonsai.rag.embed` (encoders),
:mod:`~bonsai.rag.index` (storage and the two indexes), :mod:`~bonsai.rag.centering` (language
centring of multilingual vectors), :mod:`~bonsai.rag.notes` (adding and
removing documents), :mod:`~bonsai.rag.retrieve` (hybrid search; the API chat and serve call).
"""

from bonsai.rag.retrieve import Hit, format_citation, retrieve

__all__ = ["Hit", "format_citation", "retrieve"]
