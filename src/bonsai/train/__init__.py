"""The train stage: LoRA SFT of the student on a garden's records, readable and fast on a CPU.

Stages of a run, one module each:

* ``layouts`` — how a record becomes a prompt (no loss) and a target (loss): ``alpaca``,
  ``bonsai`` (the model writes the reasoning, then the answer), ``bonsai-given`` (the reasoning is
  in the prompt). ``render_prompt``/``parse_completion`` are the same at inference.
* ``data`` / ``prepare`` — tokenise, mask, fit to ``--max-length``, split, pack rows, plan every
  step; ``bonsai train --dry-run`` prints what this produced and stops.
* ``loop`` — load, collate, forward, loss (only at target positions, the LM head in chunks, see
  ``loss``), step, evaluate (``evaluate``), save (``checkpoint``): written out plainly.
* ``plots`` / ``report`` — a run's pictures and printed summary (the run folder, its manifest
  and metrics are :mod:`bonsai.runs`, which generate, evaluate and grow read too).
* ``merge`` — fold a run's adapter into the base model.

Several GPUs (or machines) run the same loop through ``accelerate``::

    accelerate config                       # once: pick DDP (or FSDP) and the number of GPUs
    accelerate launch -m bonsai.train --garden PATH --dataset NAME [bonsai train options]

Each process trains on its share of every step's packed rows and gradients are synchronised once
per step; ``--batch-tokens`` is the global budget of a step, so the curve does not depend on the
number of processes. See docs/training.md.
"""

from bonsai.layouts import (
    LAYOUTS,
    Rendered,
    parse_completion,
    render,
    render_prompt,
    render_target,
    stop_strings,
)
from bonsai.train.args import TrainArgs

__all__ = [
    "LAYOUTS",
    "Rendered",
    "TrainArgs",
    "parse_completion",
    "render",
    "render_prompt",
    "render_target",
    "stop_strings",
]
