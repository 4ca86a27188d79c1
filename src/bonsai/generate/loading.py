"""Which weights answer, and loading them: a training run (base + LoRA adapter) or the base model.

A run lives in ``<garden>/runs/<run-id>/`` with ``manifest.json`` (``base_model``, ``layout``, …)
and ``adapter/`` (PEFT). For answering, the adapter is merged into a private copy of the base
weights (folded in directly when it is plain LoRA, see :mod:`bonsai.generate.lora`; through
peft's ``merge_and_unload`` otherwise): the merged model runs as fast as the base, where an
unmerged adapter adds two small matmuls to every linear layer.

A chat loads its engine in the background (:class:`BackgroundGenerator`): the prompt appears at
once and the first question waits for what is left of the load.

Runs are :mod:`bonsai.runs` (written by the train stage). Which run by default: the promoted one,
else the newest finished run, else the garden's base model.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bonsai.errors import BonsaiError
from bonsai.garden import Garden
from bonsai.generate.prompting import PromptLayout, get_layout
from bonsai.layouts import BASE
from bonsai.runs import RunManifest

if TYPE_CHECKING:
    from bonsai.generate.args import GenerateArgs
    from bonsai.generate.engine import Generator, TextStream


@dataclass
class RunChoice:
    """The weights a session answers with."""

    id: str
    """The run id, or ``base``."""
    base_model: str
    layout: str
    adapter_dir: Path | None = None
    manifest: RunManifest = field(default_factory=RunManifest)

    @property
    def is_base(self) -> bool:
        return self.adapter_dir is None

    def describe(self) -> str:
        if self.is_base:
            return f"the base model {self.base_model}"
        return f"run {self.id} (base {self.base_model}, layout {self.layout})"


def _usable(run: Any) -> bool:
    """A finished run with its final adapter: one that may answer by default."""
    return run.status == "finished" and (run.adapter_dir / "adapter_config.json").is_file()


def default_run_id(garden: Garden) -> str:
    """The promoted run, else the newest finished run, else ``base``."""
    from bonsai.runs import list_runs, promoted_run

    try:
        promoted = promoted_run(garden)
    except BonsaiError:
        promoted = None  # promoted, then its folder was removed: fall back
    if promoted is not None and _usable(promoted):
        return promoted.id
    finished = [run for run in list_runs(garden) if _usable(run)]
    return finished[-1].id if finished else BASE


def choose_run(garden: Garden, name: str | None = None) -> RunChoice:
    """The run called ``name`` (an id or a unique start of one, ``latest`` for the newest
    finished run, ``base``), or None for the default (see :func:`default_run_id`)."""
    from bonsai.runs import list_runs, load_run

    if name is None:
        name = default_run_id(garden)
    if name == BASE:
        return RunChoice(id=BASE, base_model=garden.config.student.base_model, layout="alpaca")
    if name == "latest":
        finished = [run for run in list_runs(garden) if _usable(run)]
        if not finished:
            raise BonsaiError(
                "this garden has no finished run yet",
                file=garden.runs_dir,
                hint="`bonsai train` makes one; `--run base` answers with the base model",
            )
        run = finished[-1]
    else:
        run = load_run(garden, name)
    # A run named on purpose may answer from its last checkpoint while it is unfinished.
    adapter = run.final_adapter()
    base_model = run.manifest.base_model_name
    if not base_model:
        raise BonsaiError(
            "the run's manifest names no base model", file=run.manifest_path, field="base_model"
        )
    return RunChoice(
        id=run.id,
        base_model=base_model,
        layout=run.manifest.layout or "alpaca",
        adapter_dir=adapter,
        manifest=run.manifest,
    )


def load_weights(choice: RunChoice) -> tuple[Any, Any]:
    """(model, tokenizer) in bfloat16 on the CPU, the run's adapter merged in."""
    import torch

    from bonsai.student import load_model
    from bonsai.student.loading import load_inference_tokenizer

    if choice.is_base:
        model = load_model(choice.base_model, dtype=torch.bfloat16)
        return model, load_inference_tokenizer(choice.base_model)
    assert choice.adapter_dir is not None
    # The LoRA delta is added in float32 and the sum rounded once: a bf16 checkpoint loads as
    # it is (its float32 values are the same numbers), any other in float32, cast afterwards.
    exact = _stored_dtype(choice.base_model) == "bfloat16"
    model = load_model(choice.base_model, dtype=torch.bfloat16 if exact else torch.float32)
    model = merge_adapter(model, choice.adapter_dir).to(torch.bfloat16)
    source = (
        str(choice.adapter_dir)
        if (choice.adapter_dir / "tokenizer_config.json").is_file()
        else choice.base_model
    )
    return model, load_inference_tokenizer(source)


def _stored_dtype(name: str) -> str | None:
    """The dtype a model folder's weights are stored in, from its config; None if unknown."""
    import json

    from bonsai.student import resolve_base_model

    config = Path(resolve_base_model(name)) / "config.json"
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = data.get("dtype") or data.get("torch_dtype") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def merge_adapter(model: Any, adapter_dir: Path) -> Any:
    """``model`` with the LoRA adapter in ``adapter_dir`` folded into its weights: directly when
    it is plain LoRA (:mod:`bonsai.generate.lora`, no peft import), else through peft (in
    float32: cast the result)."""
    from bonsai.generate.lora import fold_lora, plain_lora

    lora = plain_lora(adapter_dir)
    if lora is not None:
        try:
            folded = fold_lora(model, lora)
        except Exception as exc:  # an unreadable weights file: say which, without a traceback
            raise _adapter_error(adapter_dir, exc) from None
        if folded is not None:
            return model
    return _merge_with_peft(model, adapter_dir)


def _merge_with_peft(model: Any, adapter_dir: Path) -> Any:
    import warnings

    from peft import PeftModel

    # Merge in float32, then round once: adding a small LoRA delta to bf16 weights loses it.
    model = model.float()
    try:
        with warnings.catch_warnings():
            # peft calls a transformers method that is deprecated; nothing a user can act on.
            warnings.simplefilter("ignore", FutureWarning)
            return PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    except (ValueError, OSError, RuntimeError) as exc:
        raise _adapter_error(adapter_dir, exc) from None


def _adapter_error(adapter_dir: Path, exc: BaseException) -> BonsaiError:
    first = (str(exc).splitlines() or [type(exc).__name__])[0]
    return BonsaiError(f"could not apply the run's adapter: {first}", file=adapter_dir)


def prepared_cache_dir(base_model: str) -> Path:
    """Where a model's prepared output layer is cached: beside the converted embedded model
    (removing that folder removes it too), else in BONSAI's model cache."""
    from bonsai.student.embedded import cache_root, embedded_model_dir
    from bonsai.student.loading import EMBEDDED_ALIASES

    if base_model in EMBEDDED_ALIASES:
        return embedded_model_dir() / "prepared"
    return cache_root() / "prepared"


@dataclass
class LoadedRun:
    """A run ready to answer: its engine and prompt layout."""

    choice: RunChoice
    engine: Any
    layout: PromptLayout


def load_generator(
    choice: RunChoice, *, engine: str = "auto", precision: str = "int8"
) -> LoadedRun:
    """Load the weights of ``choice`` into an engine: ``transformers`` (default) or ``llama``
    (llama.cpp, only when ``llama-cpp-python`` is installed and asked for). ``precision``:
    'int8' or 'bf16' (see :mod:`bonsai.generate.fast`). The engine generates with
    :func:`~bonsai.generate.fast.inference_threads` torch threads, in whichever thread it runs."""
    layout = check_engine(choice, engine, precision)
    return LoadedRun(choice, load_engine(choice, engine=engine, precision=precision), layout)


def check_engine(choice: RunChoice, engine: str, precision: str) -> PromptLayout:
    """The run's prompt layout, once the engine and precision named are known ones: the quick
    checks, made before anything loads."""
    from bonsai.generate.args import PRECISIONS

    if precision not in PRECISIONS:
        raise BonsaiError(
            f"unknown precision '{precision}'", field="precision", hint="use int8 or bf16"
        )
    if engine not in ("auto", "transformers", "llama"):
        raise BonsaiError(f"unknown engine '{engine}'", hint="use transformers or llama")
    return get_layout(choice.layout)


def load_engine(choice: RunChoice, *, engine: str = "auto", precision: str = "int8") -> Generator:
    """The engine of ``choice`` (see :func:`load_generator`), loaded; nothing printed."""
    if engine == "llama":
        from bonsai.generate.llama_engine import load_llama_generator

        return load_llama_generator(choice)
    import torch

    from bonsai.generate.engine import TransformersGenerator
    from bonsai.generate.fast import inference_threads

    # Loading runs with the threads generating does, for the same reason (see inference_threads):
    # with every core, a busy machine makes quantising the layers several times slower.
    torch.set_num_threads(inference_threads())
    model, tokenizer = load_weights(choice)
    return TransformersGenerator(
        model,
        tokenizer,
        model_id=choice.id,
        precision=precision,
        prepared_cache=prepared_cache_dir(choice.base_model),
        threads=inference_threads(),
    )


class BackgroundGenerator:
    """An engine loading in a background thread, so that a chat prompt appears at once and the
    seconds of loading pass while the user types. Using it (``stream``, ``count_tokens``,
    ``max_context``) waits for the load; :meth:`wait` raises what the load raised."""

    def __init__(
        self, model_id: str, load: Callable[[], Any], *, then: Callable[[], None] | None = None
    ) -> None:
        """``then``: more to load in the same thread once the engine is ready (what the first
        question would otherwise wait for); its failure only means that wait stays."""
        self.model_id = model_id
        self._load = load
        self._then = then
        self._engine: Any = None
        self._error: BaseException | None = None
        self._done = threading.Event()
        # A daemon thread: quitting while it loads must not wait for it.
        self._thread = threading.Thread(target=self._run, name="bonsai-load", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._engine = self._load()
        except BaseException as exc:  # handed to the thread that waits
            self._error = exc
        finally:
            self._done.set()
        if self._then is not None and self._error is None:
            try:
                self._then()
            except Exception:  # nothing lost: the first question loads it instead
                logging.getLogger(__name__).debug("warming up failed", exc_info=True)

    def ready(self) -> bool:
        """True once the load has finished (or failed)."""
        return self._done.is_set()

    def wait(self) -> Generator:
        """The loaded engine, once it is; raises the load's error if it failed."""
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._engine

    @property
    def max_context(self) -> int:
        return self.wait().max_context

    def stream(self, prompt: str, args: GenerateArgs, *, prior: str | None = None) -> TextStream:
        return self.wait().stream(prompt, args, prior=prior)

    def count_tokens(self, text: str) -> int:
        return self.wait().count_tokens(text)
