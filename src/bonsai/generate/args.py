"""How the student generates: one typed config shared by chat, serve, bench and evaluation."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from bonsai.errors import BonsaiError

PRECISIONS = ("bf16", "int8")
"""How an engine stores the model's linear layers (see :mod:`bonsai.generate.fast`)."""
MAX_STOP_SEQUENCES = 16
"""The user's (OpenAI accepts 4) plus the prompt layout's; more only slows the check per token."""


@dataclass
class GenerateArgs:
    """Settings of one generation. The defaults are chosen to stop the base model's loops."""

    max_new_tokens: int = 256
    """Most tokens to generate (the answer may end sooner: end of text, a stop sequence, a loop)."""
    temperature: float = 0.7
    """Sampling temperature; 0 means greedy (the most likely token every time)."""
    top_p: float = 0.9
    """Nucleus sampling: sample only from the most likely tokens that together hold this much
    probability. 1.0 turns it off."""
    top_k: int = 50
    """Sample only from this many most likely tokens (as transformers does by default); 0 turns
    it off. Also spares sorting the whole vocabulary for every token."""
    repetition_penalty: float = 1.15
    """Divides the score of every token already generated (HF/CTRL style); 1.0 turns it off.
    Applied to the answer only, not the prompt, so quoting retrieved notes is not punished, and
    not to a digit that continues a number ("22", "100")."""
    no_repeat_ngram_size: int = 6
    """A sequence of this many tokens never appears twice in the answer; 0 turns it off. Long
    enough for ordinary phrases ("the cat") to recur, short enough to break sentence loops."""
    stop: tuple[str, ...] = ()
    """Text that ends the answer where it appears (not included). The prompt layout adds its own."""
    stop_on_loop: bool = True
    """Stop, and cut the repeats off, when the last tokens are one block repeated back to back."""
    loop_max_period: int = 64
    """Longest repeated block (in tokens) the loop detector looks for."""
    loop_min_span: int = 24
    """Fewest tokens the repeats must cover before it counts as a loop (with at least 3 copies),
    so that short legitimate repeats ("ha ha ha", "...") pass."""
    context_weight: float = 0.5
    """Context-aware decoding (Shi et al., 2023): each token's score is the model's with the
    prompt's notes and given text, weighed against its score without them, ``(1 + w) · with − w
    · without``, among the tokens at least a tenth as likely as the best with them. The answer
    leans on what the notes say over what the model would say anyway ("22 cm" in a note over a
    round "20 cm"). 0 turns it off; it applies only where a prompt without them is given
    (chat, serve and eval give one when the prompt has notes or a given text)."""
    deterministic: bool = False
    """Greedy and reproducible, for evaluation: ignores temperature and top_p."""
    seed: int | None = None
    """Seed for sampling; None draws a fresh one."""

    def __post_init__(self) -> None:
        self.stop = tuple(self.stop)
        checks: list[tuple[bool, str, str]] = [
            (self.max_new_tokens >= 1, "max_new_tokens", "must be at least 1"),
            (0.0 <= self.temperature <= 5.0, "temperature", "must be between 0 and 5"),
            (0.0 < self.top_p <= 1.0, "top_p", "must be in (0, 1]"),
            (self.top_k >= 0, "top_k", "must be 0 (off) or more"),
            (1.0 <= self.repetition_penalty <= 3.0, "repetition_penalty", "must be in [1, 3]"),
            (self.no_repeat_ngram_size >= 0, "no_repeat_ngram_size", "must be 0 (off) or more"),
            (0.0 <= self.context_weight <= 2.0, "context_weight", "must be between 0 and 2"),
            (len(self.stop) <= MAX_STOP_SEQUENCES, "stop", f"at most {MAX_STOP_SEQUENCES}"),
            (all(isinstance(s, str) and s for s in self.stop), "stop", "must be non-empty text"),
            (self.loop_max_period >= 1, "loop_max_period", "must be at least 1"),
            (self.loop_min_span >= 2, "loop_min_span", "must be at least 2"),
        ]
        for ok, name, problem in checks:
            if not ok:
                raise BonsaiError(f"{name} {problem} (got {getattr(self, name)!r})", field=name)

    @property
    def greedy(self) -> bool:
        return self.deterministic or self.temperature == 0.0

    def with_stop(self, extra: tuple[str, ...] | list[str]) -> GenerateArgs:
        """A copy that also stops at ``extra`` (duplicates dropped, order kept)."""
        return replace(self, stop=tuple(dict.fromkeys((*self.stop, *extra))))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["stop"] = list(self.stop)
        return data


def deterministic_args(**overrides: Any) -> GenerateArgs:
    """The settings evaluation uses: greedy, reproducible, with the same loop controls."""
    return GenerateArgs(**{"deterministic": True, "temperature": 0.0, **overrides})
