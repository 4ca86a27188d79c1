"""The settings of ``bonsai data check``: one dataclass, checked on creation; flags fill it.

Apart from :mod:`bonsai.curate.check` so that the command's ``--help`` reads the defaults
without loading the checks.
"""

from __future__ import annotations

from dataclasses import dataclass

from bonsai.errors import BonsaiError


@dataclass
class CheckArgs:
    """What ``bonsai data check`` looks for."""

    near_threshold: float = 0.8
    """Similarity (Jaccard of character 3-grams, 0-1) from which two instructions, and two
    inputs, count as near-same; 1.0 finds only prompts equal after folding."""
    max_tokens: int = 1024
    """Records longer than this many tokens (instruction, input, output and reasoning, in the
    student's tokenizer) are flagged: training cuts them or spends most of its time on them."""
    outlier_z: float = 3.5
    """Robust z-score (median and MAD of log token counts, per category) beyond which a record
    is unusually long or short (and it must be 3x off the typical length as well)."""

    def __post_init__(self) -> None:
        if not 0.0 < self.near_threshold <= 1.0:
            raise BonsaiError(
                f"--near-threshold must be above 0 and at most 1, not {self.near_threshold}",
                field="near_threshold",
            )
        if self.max_tokens < 1:
            raise BonsaiError(
                f"--max-tokens must be 1 or more, not {self.max_tokens}", field="max_tokens"
            )
        if self.outlier_z <= 0:
            raise BonsaiError(f"outlier_z must be above 0, not {self.outlier_z}")
