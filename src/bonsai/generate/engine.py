"""The generation engine: a narrow :class:`Generator` seam and the transformers implementation.

transformers' ``generate()`` does a lot per token that a single CPU stream does not need (input
preparation, a general logits-processor pipeline, stopping criteria over tensors). The engine
here runs its own loop over the model and its KV cache instead: one step per token on the last
position only (Gemma 3 through the lean step of :mod:`bonsai.generate.gemma_step`), the
repetition controls of :mod:`bonsai.generate.controls` on a float32 row, and streaming of text
deltas that are never taken back (text that may still turn out to be a stop sequence or a
repeat is held back until it is certain). With ``precision`` set, the model's layers are first
swapped for the faster ones of :mod:`bonsai.generate.fast`. ``bench/generate.py`` measures it
against ``generate()`` side by side.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from bonsai.errors import BonsaiError
from bonsai.generate.args import GenerateArgs
from bonsai.generate.controls import (
    AnswerState,
    LoopWatch,
    apply_controls,
    choose_token,
    digit_tokens,
    first_stop,
    held_back,
    weigh_context,
)
from bonsai.generate.transformers_compat import cache_argument

if TYPE_CHECKING:
    import torch

FINISH_REASONS = ("stop", "length", "loop", "cancelled")
"""Why an answer ended: end of text or a stop sequence, the token limit, a loop cut off, or the
consumer stopped reading."""

DEFAULT_MAX_CONTEXT = 8192
"""Prompt plus answer, in tokens, unless the model's own limit is smaller. Gemma 3 270M allows
32k, but a long context is slow on a small CPU and a chat turn never needs it."""


@dataclass
class Generation:
    """One finished answer and what it cost."""

    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    """From the call to the last token."""
    first_token_seconds: float
    """From the call to the first generated token (prompt processing included)."""

    @property
    def tokens_per_s(self) -> float:
        decode = self.seconds - self.first_token_seconds
        return (self.completion_tokens - 1) / decode if self.completion_tokens > 1 and decode else 0


class TextStream(Iterator[str]):
    """Text deltas of an answer as they are decided; :attr:`result` once exhausted.

    ``close()`` (or leaving a ``with`` block) stops the generation: the result then says
    ``cancelled`` and holds what was produced so far.
    """

    def __init__(
        self, steps: Iterator[str], holder: dict[str, Generation], *, prompt_tokens: int = 0
    ) -> None:
        self._steps = steps
        self._holder = holder
        self._prompt_tokens = prompt_tokens
        self._closed = False

    def __iter__(self) -> TextStream:
        return self

    def __next__(self) -> str:
        return next(self._steps)

    def __enter__(self) -> TextStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._closed = True
        close = getattr(self._steps, "close", None)
        if close:
            close()

    @property
    def result(self) -> Generation:
        if "result" not in self._holder:
            if not self._closed:
                raise RuntimeError("the stream has not finished yet")
            # Closed before the first step: nothing was generated.
            return Generation("", "cancelled", self._prompt_tokens, 0, 0.0, 0.0)
        return self._holder["result"]


@runtime_checkable
class Generator(Protocol):
    """What chat, serve and evaluation need from an engine."""

    model_id: str
    """Names the weights: a run id, ``base``, or a model path."""

    @property
    def max_context(self) -> int:
        """Most tokens of prompt and answer together."""
        ...

    def stream(self, prompt: str, args: GenerateArgs, *, prior: str | None = None) -> TextStream:
        """Generate a completion of ``prompt`` (already in the model's prompt layout).

        ``prior``: the same prompt without its notes and given text, for context-aware decoding
        (:attr:`GenerateArgs.context_weight`); an engine that cannot decode so ignores it."""
        ...

    def count_tokens(self, text: str) -> int: ...


def generate(
    engine: Generator,
    prompt: str,
    args: GenerateArgs,
    *,
    on_text: Callable[[str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    prior: str | None = None,
) -> Generation:
    """Run a stream to its end, passing each delta to ``on_text``; ``should_stop`` cancels;
    ``prior`` as in :meth:`Generator.stream`."""
    with engine.stream(prompt, args, prior=prior) as stream:
        for delta in stream:
            if on_text:
                on_text(delta)
            if should_stop and should_stop():
                break
    return stream.result


class _EagerDecoder:
    """The model with a growing (dynamic) KV cache: no warm-up, any length.

    A static cache with ``torch.compile`` was measured too: compiling Gemma 3 for the CPU took
    longer than 13 minutes on the 2-core machine (it never finished), so the engine stays eager
    and saves its time by reading fewer bytes (:mod:`bonsai.generate.fast`) instead."""

    def __init__(self, model: Any) -> None:
        from transformers import DynamicCache

        self.model = model
        self.cache = DynamicCache(config=model.config)
        self.cache_kwarg = cache_argument(model)

    def prefill(self, ids: list[int]) -> torch.Tensor:
        import torch

        out = self.model(
            input_ids=torch.tensor([ids]),
            use_cache=True,
            logits_to_keep=1,
            **{self.cache_kwarg: self.cache},
        )
        return out.logits[0, -1]

    def step(self, token: int) -> torch.Tensor:
        import torch

        out = self.model(
            input_ids=torch.tensor([[token]]), use_cache=True, **{self.cache_kwarg: self.cache}
        )
        return out.logits[0, -1]


class TransformersGenerator:
    """A causal LM from transformers (bf16 on the CPU by default), with its tokenizer."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        model_id: str,
        max_context: int | None = None,
        precision: str | None = None,
        prepared_cache: Path | None = None,
        threads: int | None = None,
    ) -> None:
        """``precision``: None leaves the model as it is (it may be shared, e.g. with adapters
        attached); 'bf16' or 'int8' swap its layers in place for the fast ones of
        :mod:`bonsai.generate.fast` (for a model this engine owns), keeping the packed output
        layer in the folder ``prepared_cache`` between runs. ``threads``: torch threads to
        generate with, set in whichever thread generates (torch's count is per thread: a server's
        model thread or a chat whose model loaded in the background would use every core)."""
        self.model = model.eval()
        self.threads = threads
        self.inference: dict[str, Any] = {"precision": "as loaded"}
        # The lean decode step (bonsai.generate.gemma_step) where it is exact; not with adapters
        # attached, whose layers it does not know.
        self.lean_step = not hasattr(model, "peft_config")
        if precision is not None:
            from bonsai.generate.fast import prepare_for_inference

            self.inference = prepare_for_inference(self.model, precision, cache=prepared_cache)
        self.tokenizer = tokenizer
        self.model_id = model_id
        limit = getattr(model.config, "max_position_embeddings", None) or DEFAULT_MAX_CONTEXT
        self.max_context = min(max_context or DEFAULT_MAX_CONTEXT, limit)
        self.eos_ids = _eos_ids(model, tokenizer)
        vocabulary = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
        self.digits = digit_tokens(enumerate(vocabulary))
        from bonsai.generate.gemma_step import supports

        lean = self.lean_step and supports(self.model)
        self.inference["decode"] = "lean gemma step" if lean else "transformers forward"

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def encode_prompt(self, prompt: str) -> list[int]:
        ids = list(self.tokenizer(prompt)["input_ids"])
        if len(ids) >= self.max_context:
            raise BonsaiError(
                f"the prompt is {len(ids)} tokens; this model takes at most {self.max_context - 1}",
                field="prompt",
                hint="ask a shorter question or retrieve fewer notes",
            )
        return ids

    def stream(self, prompt: str, args: GenerateArgs, *, prior: str | None = None) -> TextStream:
        holder: dict[str, Generation] = {}
        ids = self.encode_prompt(prompt)  # raise here, before the stream is handed out
        prior_ids = self.encode_prompt(prior) if prior and args.context_weight > 0 else None
        text = stream_text(
            lambda state: self._tokens(ids, args, state, prior_ids),
            self._decode,
            self.eos_ids,
            len(ids),
            args,
            holder,
            self.digits,
        )
        return TextStream(text, holder, prompt_tokens=len(ids))

    def _tokens(
        self,
        ids: list[int],
        args: GenerateArgs,
        state: AnswerState,
        prior_ids: list[int] | None = None,
    ) -> Iterator[int]:
        """The chosen tokens, one model step each; stops at the token or context limit.

        With ``prior_ids`` (the prompt without its context) a second decoder follows the same
        answer, and each token is chosen by :func:`weigh_context`."""
        import torch

        from bonsai.generate.gemma_step import GemmaStep, step_pair

        if self.threads and torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        generator = sampler(args)
        budget = min(args.max_new_tokens, self.max_context - len(ids))
        decoder = self._decoder(len(ids) + budget)
        prior = self._decoder(len(prior_ids) + budget) if prior_ids else None
        # The lean step decodes both in one pass over the weights (gemma_step.step_pair).
        paired = isinstance(decoder, GemmaStep) and isinstance(prior, GemmaStep)
        # Inference mode only around the model's work, never across a yield: the consumer's
        # code between tokens must run in the ordinary mode.
        with torch.inference_mode():
            logits = decoder.prefill(ids)
            prior_logits = prior.prefill(prior_ids) if prior and prior_ids else None
        for i in range(budget):
            with torch.inference_mode():
                scores = logits.float()
                if prior_logits is not None:
                    scores = weigh_context(scores, prior_logits.float(), args.context_weight)
                token = choose_token(apply_controls(scores, state, args), args, generator)
            yield token
            if i + 1 < budget:
                with torch.inference_mode():
                    if prior is None:
                        logits = decoder.step(token)
                    elif paired:
                        logits, prior_logits = step_pair(decoder, prior, token)
                    else:
                        logits, prior_logits = decoder.step(token), prior.step(token)

    def _decoder(self, capacity: int) -> Any:
        from bonsai.generate import gemma_step

        if self.lean_step and gemma_step.supports(self.model):
            return gemma_step.GemmaStep(self.model, capacity)
        return _EagerDecoder(self.model)

    def _decode(self, tokens: list[int]) -> str:
        return self.tokenizer.decode(tokens, skip_special_tokens=True)


def sampler(args: GenerateArgs) -> torch.Generator | None:
    """The random source of one answer: seeded when asked, none when greedy."""
    import torch

    if args.greedy:
        return None
    generator = torch.Generator()
    if args.seed is not None:
        generator.manual_seed(args.seed)
    else:
        generator.seed()
    return generator


def stream_text(
    choose: Callable[[AnswerState], Iterator[int]],
    decode: Callable[[list[int]], str],
    eos_ids: set[int],
    prompt_tokens: int,
    args: GenerateArgs,
    holder: dict[str, Generation],
    digits: frozenset[int] = frozenset(),
) -> Iterator[str]:
    """Text deltas of the answer made of the tokens ``choose(state)`` yields (the engine picks
    them with the answer's :class:`AnswerState`): stops at an end token, a stop sequence or a
    loop, and holds back whatever a stop sequence or a loop could still take away, so that
    nothing streamed is ever taken back. Every engine shares this, so all of them stream and
    stop alike. The result goes into ``holder``. ``digits``: the engine's digit tokens, which
    the repetition penalty passes over inside a number (:mod:`bonsai.generate.controls`)."""
    state = AnswerState(args.no_repeat_ngram_size, digits)
    tokens = choose(state)
    started = time.perf_counter()
    first_token = 0.0
    loop = LoopWatch(args.loop_max_period, args.loop_min_span)
    text, emitted, finish = "", 0, "length"
    at: int | None = None
    try:
        for token in tokens:
            if not first_token:
                first_token = time.perf_counter() - started
            if token in eos_ids:
                finish = "stop"
                break
            state.add(token)
            cut = loop.add(token) if args.stop_on_loop else None
            if cut is not None:
                text, finish = decode(state.tokens[:cut]), "loop"
                break
            text = decode(state.tokens)
            at = first_stop(text, args.stop, emitted)
            if at is not None:
                text, finish = text[:at], "stop"
                break
            hold = loop.suspect() if args.stop_on_loop else 0
            safe = decode(state.tokens[: len(state.tokens) - hold]) if hold else text
            safe = safe[: len(safe) - held_back(safe, args.stop)]
            if len(safe) > emitted and text.startswith(safe):
                delta, emitted = safe[emitted:], len(safe)
                yield delta
        if finish != "stop" or at is None:
            # An answer cut at a token boundary may end inside a character: drop its bytes.
            text = text.rstrip("\ufffd")
        if len(text) > emitted:
            delta, emitted = text[emitted:], len(text)
            yield delta
    except GeneratorExit:
        # The consumer stopped reading: what it was sent is the answer.
        text, finish = text[:emitted], "cancelled"
        raise
    finally:
        close = getattr(tokens, "close", None)
        if close:
            close()
        elapsed = time.perf_counter() - started
        holder["result"] = Generation(
            text=text,
            finish_reason=finish,
            prompt_tokens=prompt_tokens,
            completion_tokens=len(state.tokens) + (1 if finish == "stop" else 0),
            seconds=elapsed,
            first_token_seconds=first_token or elapsed,
        )


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    """Every token that ends an answer: the tokenizer's and the model's (Gemma ends a turn with
    ``<end_of_turn>`` as well as ``<eos>``)."""
    found: set[int] = set()
    candidates: list[Any] = [tokenizer.eos_token_id]
    for config in (getattr(model, "generation_config", None), model.config):
        candidates.append(getattr(config, "eos_token_id", None))
    for item in candidates:
        if isinstance(item, int):
            found.add(item)
        elif isinstance(item, list | tuple):
            found.update(i for i in item if isinstance(i, int))
    end_of_turn = tokenizer.convert_tokens_to_ids("<end_of_turn>")
    if isinstance(end_of_turn, int) and end_of_turn != tokenizer.unk_token_id:
        found.add(end_of_turn)
    return found
