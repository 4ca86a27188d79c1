"""The teach stage: a teacher writes the reasoning of every record.

- ``args.TeachArgs``: the settings (from the garden's ``[teacher]`` config, then flags).
- ``templates``: one Jinja2 prompt template per category; the garden's files override defaults.
- ``backends``: the ``Teacher`` Protocol and the openai, local and template backends.
- ``validate``: checks an answer (limits, sentence form, copy, language) before it is kept.
- ``cache``: answers cached by content hash, every call logged, in the garden database.
- ``runner``: plan, teach concurrently with retries, write one undoable changeset.
"""

from bonsai.teach.args import TeachArgs
from bonsai.teach.runner import TeachSummary, plan_run, teach

__all__ = ["TeachArgs", "TeachSummary", "plan_run", "teach"]
