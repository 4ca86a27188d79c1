"""Generating answers with the student: settings, repetition controls, engines, loading a run.

- :class:`~bonsai.generate.args.GenerateArgs`: max tokens, sampling, repetition controls, stops.
- :class:`~bonsai.generate.engine.Generator`: the seam; ``stream(prompt, args)`` yields text.
- :func:`~bonsai.generate.loading.load_generator`: a run (base model + merged LoRA adapter, in
  the run's prompt layout) or the base model, ready to answer.
"""

from bonsai.generate.args import GenerateArgs, deterministic_args
from bonsai.generate.engine import Generation, Generator, TextStream, generate

__all__ = [
    "GenerateArgs",
    "Generation",
    "Generator",
    "TextStream",
    "deterministic_args",
    "generate",
]
