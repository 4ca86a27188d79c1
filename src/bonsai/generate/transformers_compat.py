"""What differs between the transformers versions BONSAI runs on, in one place.

Both decoders (:mod:`bonsai.generate.engine`'s plain one and :mod:`bonsai.generate.gemma_step`)
read it, so neither has to import the other.
"""

from __future__ import annotations

from typing import Any


def cache_argument(model: Any) -> str:
    """The name the model's forward takes its KV cache by: ``cache`` since transformers 5.x
    renamed it (the old ``past_key_values`` still works there, with a warning per call)."""
    import inspect

    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    try:
        parameters = inspect.signature(inner.forward).parameters
    except (TypeError, ValueError):
        return "past_key_values"
    return "cache" if "cache" in parameters else "past_key_values"
