"""Checkpoints: everything a run needs to continue exactly where it stopped, written atomically.

A checkpoint folder holds the LoRA adapter (a PEFT folder), the optimizer and scheduler state,
the random generators' state and ``state.json`` (step, tokens seen, epoch, the epoch's data order
and a hash of the whole step plan). It is written beside the old one and swapped in with a
rename, so a full disk or a kill while saving leaves the previous checkpoint as it was.
"""

from __future__ import annotations

import errno
import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bonsai.errors import BonsaiError
from bonsai.util.atomic import atomic_dir

STATE = "state.json"
OPTIMIZER = "optimizer.pt"
SCHEDULER = "scheduler.pt"
RNG = "rng.pt"
ADAPTER = "adapter"


@dataclass
class TrainState:
    """Where a run is: what the loop counts and what a resume must restore."""

    step: int = 0
    """Optimizer steps done."""
    tokens: int = 0
    """Tokens trained on so far (every token of every packed row)."""
    loss_tokens: int = 0
    """Target tokens trained on so far."""
    seconds: float = 0.0
    """Time spent in training steps (not evaluation or saving)."""
    epoch: int = 0
    plan_hash: str = ""
    """Hash of the step plan (which examples each step trains on); a resume checks it."""
    epoch_order: list[str] = field(default_factory=list)
    """Record ids of the current epoch in their training order."""
    best_val: float | None = None
    last_val: float | None = None
    train_loss_at_last_val: float | None = None
    train_losses_since_eval: list[float] = field(default_factory=list)
    """Training loss of each step since the last evaluation."""
    train_sums_since_eval: dict[str, Any] = field(default_factory=dict)
    """Training loss sums per category since the last evaluation (``LossSums.to_dict``)."""


def _rng_state() -> dict[str, Any]:
    import numpy as np
    import torch

    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [kind, np.asarray(keys).tolist(), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    import numpy as np
    import torch

    python = state["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _disk_error(exc: OSError, folder: Path, what: str, previous: str) -> BonsaiError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return BonsaiError(
            f"no space left on the disk to save the {what}; {previous}",
            file=folder,
            hint="free some space, then `bonsai train --resume` continues from the last checkpoint",
        )
    return BonsaiError(f"could not save the {what}: {exc.strerror or exc}", file=folder)


def save_adapter(model: Any, folder: Path) -> None:
    """The PEFT adapter alone, atomically (a run's final ``adapter/``)."""
    try:
        with atomic_dir(folder) as tmp:
            model.save_pretrained(tmp)
    except OSError as exc:
        raise _disk_error(exc, folder, "adapter", "nothing was half-written") from None


def save_checkpoint(
    folder: Path, model: Any, optimizer: Any, scheduler: Any, state: TrainState
) -> None:
    """Write a checkpoint to ``folder`` atomically. A full disk is a clear error, and the
    previous checkpoint stays intact."""
    import torch

    try:
        with atomic_dir(folder) as tmp:
            model.save_pretrained(tmp / ADAPTER)
            torch.save(optimizer.state_dict(), tmp / OPTIMIZER)
            torch.save(scheduler.state_dict(), tmp / SCHEDULER)
            torch.save(_rng_state(), tmp / RNG)
            (tmp / STATE).write_text(json.dumps(asdict(state), indent=1), encoding="utf-8")
    except OSError as exc:
        raise _disk_error(exc, folder, "checkpoint", "the previous checkpoint is intact") from None


def _corrupt(path: Path, why: object) -> BonsaiError:
    return BonsaiError(
        f"the checkpoint is corrupt or incomplete ({why})",
        file=path,
        hint="start again with `bonsai train --from RUN` (the run's last adapter), or delete the "
        "checkpoint folder to start the run over",
    )


@dataclass
class Checkpoint:
    """A checkpoint read back: its folder, state, and the states to load into the objects."""

    folder: Path
    state: TrainState
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    rng: dict[str, Any]

    @property
    def adapter(self) -> Path:
        return self.folder / ADAPTER


def load_checkpoint(folder: Path) -> Checkpoint:
    """Read and check every file of a checkpoint; a damaged one is named in a BonsaiError."""
    import torch

    path = folder / STATE
    try:
        state = TrainState(**json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise _corrupt(path, "file missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError) as exc:
        raise _corrupt(path, exc) from None

    loaded: dict[str, Any] = {}
    for name in (OPTIMIZER, SCHEDULER, RNG):
        path = folder / name
        try:
            loaded[name] = torch.load(path, weights_only=True)
        except FileNotFoundError:
            raise _corrupt(path, "file missing") from None
        except Exception as exc:  # torch raises many kinds for a damaged file
            raise _corrupt(path, str(exc).splitlines()[0][:120]) from None

    adapter = folder / ADAPTER
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        if not (adapter / name).is_file():
            raise _corrupt(adapter / name, "file missing")
    try:
        from safetensors import safe_open

        with safe_open(str(adapter / "adapter_model.safetensors"), framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 - safe_open is not a mapping
                handle.get_tensor(key)
        json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
    except Exception as exc:
        raise _corrupt(adapter, str(exc).splitlines()[0][:120]) from None
    return Checkpoint(folder, state, loaded[OPTIMIZER], loaded[SCHEDULER], loaded[RNG])


def restore(checkpoint: Checkpoint, model: Any, optimizer: Any, scheduler: Any) -> TrainState:
    """Load a checkpoint into the model's LoRA weights, the optimizer, scheduler and RNGs."""
    import torch
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    weights = load_file(str(checkpoint.adapter / "adapter_model.safetensors"))
    result = set_peft_model_state_dict(model, weights)
    unexpected = getattr(result, "unexpected_keys", [])
    if unexpected:
        raise _corrupt(checkpoint.adapter, f"{len(unexpected)} weights do not fit the model")
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad and param.dtype != torch.float32:
                param.data = param.data.float()
    try:
        optimizer.load_state_dict(checkpoint.optimizer)
        scheduler.load_state_dict(checkpoint.scheduler)
    except (ValueError, KeyError, RuntimeError) as exc:
        raise _corrupt(checkpoint.folder / OPTIMIZER, exc) from None
    _set_rng_state(checkpoint.rng)
    return checkpoint.state
