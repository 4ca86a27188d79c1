"""The training loop, top to bottom: load, collate, forward, loss, step, evaluate, save.

Plain torch + peft + transformers. ``accelerate``'s :class:`~accelerate.Accelerator` places the
model on the device and, under ``accelerate launch``, wraps it for DDP/FSDP and synchronises
gradients; on one CPU it changes nothing. Each process trains on its share of each step's packed
rows; every process knows the whole step plan, so the loss is normalised by the step's target
tokens without any communication.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from typing import Any

from rich.console import Console

from bonsai import runs
from bonsai.errors import BonsaiError
from bonsai.garden import Garden
from bonsai.train.args import MICRO_TOKENS, TrainArgs
from bonsai.train.checkpoint import (
    Checkpoint,
    TrainState,
    load_checkpoint,
    restore,
    save_adapter,
    save_checkpoint,
)
from bonsai.train.data import Example, collate
from bonsai.train.evaluate import LossSums, validation_loss
from bonsai.train.prepare import Prepared, prepare
from bonsai.train.report import RunLog, StepProgress, print_examples, print_plan, run_manifest

MEMORISATION_MARGIN = 0.005
"""Relative rise of the validation loss (while training loss falls) that triggers the warning."""
PLOT_EVERY_S = 60.0
"""Loss curves are redrawn at an evaluation when this many seconds passed since the last time."""


@dataclass
class StopFlag:
    requested: bool = False
    signal_name: str = ""


@contextmanager
def stop_on_signal() -> Iterator[StopFlag]:
    """Ctrl-C (SIGINT) or SIGTERM asks the loop to stop after the current step and checkpoint.
    A second Ctrl-C stops at once (the previous checkpoint is still intact)."""
    flag = StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum: int, frame: Any) -> None:
        if flag.requested:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        flag.requested = True
        flag.signal_name = signal.Signals(signum).name

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield flag
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# -- entry points ---------------------------------------------------------------------------------


def train(
    garden: Garden,
    args: TrainArgs,
    *,
    console: Console | None = None,
    on_step: Callable[[TrainState], None] | None = None,
) -> runs.Run | None:
    """Start a run (or, with ``args.dry_run``, show what it would train on). Returns the run;
    its status says whether it finished or was interrupted."""
    from accelerate import PartialState

    from bonsai.train.model import choose_precision

    log = RunLog(console)
    world = PartialState().num_processes
    prep = prepare(garden, args, world=world)
    print_plan(prep, log)
    if args.dry_run:
        print_examples(prep, log.console)
        return None
    device = PartialState().device
    if device.type == "cpu":
        import torch

        # Measure the precisions with the threads training will use.
        torch.set_num_threads(prep.args.threads or 1)
    precision, why = choose_precision(prep.args.precision, device)
    if world > 1:  # every process must train in the precision the main one measured
        from accelerate.utils import broadcast_object_list

        precision, why = broadcast_object_list([precision, why])
    if why != "given":
        prep.notes.append(f"precision {precision} ({why})")
        log.note(f"precision {precision} ({why})")
    prep.args = replace(prep.args, precision=precision)
    run = _shared_run(garden, prep)
    log.attach(run.log_path)
    log.info(f"Run [bold]{run.id}[/] in {run.dir}")
    return _fit(garden, run, prep, None, log, on_step)


def resume(
    garden: Garden,
    *,
    dataset: str | None = None,
    console: Console | None = None,
    on_step: Callable[[TrainState], None] | None = None,
) -> runs.Run | None:
    """Continue the latest unfinished run on the same curve; None when there is none."""
    from accelerate import PartialState

    log = RunLog(console)
    run = runs.latest_unfinished(garden, dataset=dataset)
    if run is None:
        where = f" of dataset '{dataset}'" if dataset else ""
        log.info(f"No unfinished run{where} to resume: nothing to do.")
        return None
    args = TrainArgs.from_dict(run.manifest.args)
    val_ids = run.manifest.data.get("val_ids")
    prep = prepare(garden, args, val_ids=val_ids, world=PartialState().num_processes)
    if prep.data_hash != run.manifest.data["hash"]:
        raise BonsaiError(
            f"the data of run {run.id} changed since it started (records edited, re-split or "
            "another tokenizer), so it cannot continue on the same curve",
            hint=f"start a new run that continues its adapter: bonsai train --from {run.id}",
        )
    checkpoint = load_checkpoint(run.checkpoint_dir) if run.checkpoint_dir.exists() else None
    log.attach(run.log_path)
    if checkpoint is None:
        log.info(f"Resuming run [bold]{run.id}[/] from the start (it has no checkpoint yet).")
    else:
        log.info(
            f"Resuming run [bold]{run.id}[/] at step {checkpoint.state.step} of "
            f"{prep.total_steps} (status was {run.status})."
        )
    return _fit(garden, run, prep, checkpoint, log, on_step)


def _shared_run(garden: Garden, prep: Prepared) -> runs.Run:
    """The main process creates the run folder; the others open the same one."""
    from accelerate import PartialState
    from accelerate.utils import broadcast_object_list

    state = PartialState()
    run_id: list[str | None] = [None]
    if state.is_main_process:
        run_id = [runs.create_run(garden, run_manifest(prep)).id]
    if state.num_processes > 1:
        broadcast_object_list(run_id)
    return runs.load_run(garden, str(run_id[0]))


# -- the loop -------------------------------------------------------------------------------------


def _fit(
    garden: Garden,
    run: runs.Run,
    prep: Prepared,
    checkpoint: Checkpoint | None,
    log: RunLog,
    on_step: Callable[[TrainState], None] | None,
) -> runs.Run:
    import torch

    args = prep.args
    accelerator = _accelerator(args.precision)
    main = accelerator.is_main_process
    if accelerator.device.type == "cpu":
        from bonsai.train.model import keep_freed_memory

        torch.set_num_threads(args.threads or 1)
        keep_freed_memory()
    if main:
        runs.set_status(garden, run, "running")
    try:
        return _fit_loop(garden, run, prep, checkpoint, log, on_step, accelerator)
    except BaseException as exc:
        if main:
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            runs.set_status(garden, run, status, error=str(exc) or type(exc).__name__)
        raise


def _accelerator(precision: str) -> Any:
    """The run's :class:`~accelerate.Accelerator`. With bf16 the frozen base is stored in
    bfloat16 and the float32 LoRA weights are multiplied in bfloat16 under its autocast (float32
    master weights, as in any mixed-precision training)."""
    from accelerate import Accelerator, PartialState
    from accelerate.state import AcceleratorState

    mixed = "bf16" if precision == "bf16" else "no"
    shared = AcceleratorState._shared_state
    if shared and shared.get("_mixed_precision") != mixed and PartialState().num_processes == 1:
        # Another run in this process (grow, an ablation) chose the other precision. accelerate
        # keeps one state per process; a single process has nothing to tear down, so start anew.
        AcceleratorState._reset_state()
    return Accelerator(mixed_precision=mixed)


def _fit_loop(
    garden: Garden,
    run: runs.Run,
    prep: Prepared,
    checkpoint: Checkpoint | None,
    log: RunLog,
    on_step: Callable[[TrainState], None] | None,
    accelerator: Any,
) -> runs.Run:
    import torch

    from bonsai.train.loss import loss_module
    from bonsai.train.model import add_lora, count_parameters, load_base, trainable_parameters

    args = prep.args
    main = accelerator.is_main_process

    # Load: the frozen base model, and LoRA weights (new and seeded, or the parent's).
    log.info(f"Loading {prep.base_model} ({args.precision})…")
    model = add_lora(
        load_base(prep.base_model, args.precision),
        rank=args.lora_rank or 8,
        alpha=args.lora_alpha or 16.0,
        targets=args.lora_targets,
        dropout=args.lora_dropout,
        seed=args.seed,
        parent_adapter=prep.parent.final_adapter() if prep.parent else None,
    )
    trainable, total = count_parameters(model)
    log.info(f"LoRA: {trainable:,} trainable parameters of {total:,} ({trainable / total:.2%}).")
    params = trainable_parameters(model)
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay)
    total_steps = prep.total_steps
    scheduler = cosine_schedule(optimizer, round(args.warmup * total_steps), total_steps)
    module, optimizer = accelerator.prepare(loss_module(model), optimizer)

    state = TrainState(plan_hash=prep.plan_hash)
    if checkpoint is not None:
        state = restore(checkpoint, model, optimizer, scheduler)
        if state.plan_hash != prep.plan_hash:
            raise BonsaiError(
                "the checkpoint was made with another step plan (other settings or number of "
                "processes), so the run cannot continue on the same curve",
                file=checkpoint.folder,
            )
    if main and run.metrics_path.exists():
        # A resumed run: what was logged after the checkpoint will be logged again.
        runs.keep_metrics_upto(run, state.step)
        runs.append_metric(run, {"kind": "resume", "step": state.step, "time": time.time()})

    _last_plot[run.id] = time.monotonic()
    # Training loss per category since the last evaluation (kept in checkpoints, so a resumed
    # run reports the same numbers as an uninterrupted one).
    sums_since_eval = LossSums.from_dict(state.train_sums_since_eval)
    with stop_on_signal() as stop, StepProgress(log.console, total_steps, state) as progress:
        while state.step < total_steps:
            step = prep.plan[state.step]
            if state.step == 0 or step.epoch != state.epoch:
                _start_epoch(run, prep, state, step.epoch, main)

            started = time.perf_counter()
            loss, tokens, loss_tokens, grad_norm = _train_step(
                module, optimizer, scheduler, params, step.rows, prep.train, accelerator,
                args.grad_clip, sums_since_eval,
            )  # fmt: skip
            seconds = time.perf_counter() - started
            state.step += 1
            state.tokens += tokens
            state.loss_tokens += loss_tokens
            state.seconds += seconds
            state.train_losses_since_eval.append(loss)
            if main:
                runs.append_metric(run, {
                    "kind": "train", "step": state.step, "epoch": step.epoch,
                    "loss": loss, "lr": scheduler.get_last_lr()[0], "grad_norm": grad_norm,
                    "tokens": state.tokens, "tokens_per_s": tokens / seconds,
                    "seconds": state.seconds,
                })  # fmt: skip
            progress.advance(state, loss, tokens / seconds)
            if on_step is not None:
                on_step(state)

            if state.step % (args.eval_every or 1) == 0 or state.step == total_steps:
                _evaluate(run, prep, model, accelerator, state, log, progress, sums_since_eval)
                sums_since_eval, state.train_losses_since_eval = LossSums(), []
                if main:
                    _update_summary(garden, run, state)

            state.train_sums_since_eval = sums_since_eval.to_dict()
            if _agree(accelerator, stop.requested):
                _save(run, model, optimizer, scheduler, state, accelerator)
                if main:
                    _update_summary(garden, run, state)
                    runs.set_status(garden, run, "interrupted")
                    _plot(run)
                log.info(
                    f"Stopped by {stop.signal_name or 'a signal'} after step {state.step} of "
                    f"{total_steps}; checkpoint saved. `bonsai train --resume` continues it."
                )
                return run
            if state.step % (args.save_every or 1) == 0 and state.step < total_steps:
                _save(run, model, optimizer, scheduler, state, accelerator)

    # Save: the final adapter (what chat, merge and --from use), pictures, summary.
    if main:
        save_adapter(accelerator.unwrap_model(module).model, run.adapter_dir)
        _update_summary(garden, run, state)
        runs.set_status(garden, run, "finished")
        _plot(run)
        log.info(
            f"Finished run [bold]{run.id}[/]: {state.step} steps, {state.tokens:,} tokens in "
            f"{state.seconds:.0f} s ({state.tokens / max(state.seconds, 1e-9):.0f} tokens/s); "
            f"validation loss {state.last_val:.4f}. Adapter: {run.adapter_dir}"
        )
    accelerator.wait_for_everyone()
    return run


def cosine_schedule(optimizer: Any, warmup: int, total: int) -> Any:
    """Linear warmup from 0, then cosine decay to 0 at ``total`` (the same curve as
    transformers' ``get_cosine_schedule_with_warmup``, without importing its trainer code)."""
    import torch

    def factor(step: int) -> float:
        if step < warmup:
            return step / max(1, warmup)
        progress = (step - warmup) / max(1, total - warmup)
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _train_step(
    module: Any,
    optimizer: Any,
    scheduler: Any,
    params: list[Any],
    rows: list[list[int]],
    examples: list[Example],
    accelerator: Any,
    grad_clip: float,
    sums: LossSums,
) -> tuple[float, int, int, float | None]:
    """One optimizer step over ``rows``: (mean loss, tokens, target tokens, gradient norm)."""
    import torch

    world, rank = accelerator.num_processes, accelerator.process_index
    # Every process knows the whole step, so each can normalise by all of its target tokens.
    loss_tokens = sum(examples[i].n_target for row in rows for i in row)
    tokens = sum(len(examples[i].input_ids) for row in rows for i in row)
    mine = rows[rank::world] or rows[:1]
    weight = 1.0 if rows[rank::world] else 0.0  # a process with no row of its own adds nothing
    loss_sum = torch.zeros((), dtype=torch.float64)
    for k, row in enumerate(mine):
        batch = collate([examples[i] for i in row]).to(accelerator.device)
        last = k == len(mine) - 1
        # Gradients are synchronised across processes once per step, on the last row.
        with nullcontext() if last else accelerator.no_sync(module):
            losses = module(batch)
            # DDP averages gradients over processes; scaling by `world` makes the result the
            # mean over every target token of the step, whichever process trained on it.
            accelerator.backward(losses.sum() * (weight * world / loss_tokens))
        if weight:
            sums.add(losses, batch.categories)
            loss_sum += losses.detach().double().sum().cpu()
    grad_norm = None
    if grad_clip:
        grad_norm = float(accelerator.clip_grad_norm_(params, grad_clip))
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    if world > 1:
        loss_sum = accelerator.reduce(loss_sum.to(accelerator.device), reduction="sum").cpu()
    return float(loss_sum) / loss_tokens, tokens, loss_tokens, grad_norm


def _start_epoch(run: runs.Run, prep: Prepared, state: TrainState, epoch: int, main: bool) -> None:
    from bonsai.train.data import epoch_order

    state.epoch = epoch
    order = epoch_order(len(prep.train), prep.args.seed, epoch)
    state.epoch_order = [prep.train[i].record_id for i in order]
    if main:
        runs.append_metric(run, {"kind": "epoch", "step": state.step, "epoch": epoch})


def _evaluate(
    run: runs.Run,
    prep: Prepared,
    model: Any,
    accelerator: Any,
    state: TrainState,
    log: RunLog,
    progress: StepProgress,
    train_sums: LossSums,
) -> None:
    """Validation loss overall and per category; warn when it rises while training loss falls."""
    sums = validation_loss(
        model,
        prep.val,
        micro_tokens=prep.args.micro_tokens or MICRO_TOKENS,
        device=accelerator.device,
        rank=accelerator.process_index,
        world=accelerator.num_processes,
    )
    if accelerator.num_processes > 1:
        reduced = accelerator.reduce(sums.to_tensor(accelerator.device), reduction="sum")
        sums = LossSums.from_tensor(reduced.cpu())
    val = sums.mean
    train_losses = state.train_losses_since_eval
    train = sum(train_losses) / len(train_losses) if train_losses else float("nan")
    warning = memorisation_warning(state.last_val, val, state.train_loss_at_last_val, train)
    state.last_val = val
    state.train_loss_at_last_val = train
    state.best_val = val if state.best_val is None else min(state.best_val, val)
    progress.set_val(val)
    per_category = sums.means()
    if accelerator.is_main_process:
        runs.append_metric(run, {
            "kind": "val", "step": state.step, "loss": val, "tokens": sums.tokens,
            "by_category": per_category, "train_loss": train,
            "train_by_category": train_sums.means(),
        })  # fmt: skip
        if warning:
            runs.append_metric(run, {"kind": "warning", "step": state.step, "message": warning})
        _plot(run, every=PLOT_EVERY_S)
    shown = ", ".join(f"{k} {v:.3f}" for k, v in per_category.items())
    log.info(f"step {state.step}: train {train:.4f}, validation {val:.4f} ({shown})")
    if warning:
        log.warning(warning)


def memorisation_warning(
    last_val: float | None, val: float, last_train: float | None, train: float
) -> str | None:
    """A warning when validation loss rose since the last evaluation while training loss fell:
    the model is getting better at its records and worse at others, i.e. memorising."""
    if last_val is None or last_train is None:
        return None
    if val > last_val * (1 + MEMORISATION_MARGIN) and train < last_train:
        return (
            f"validation loss rose ({last_val:.4f} → {val:.4f}) while training loss fell "
            f"({last_train:.4f} → {train:.4f}): the model may be memorising its records; fewer "
            "epochs or more data would help"
        )
    return None


def _agree(accelerator: Any, flag: bool) -> bool:
    """Whether any process was asked to stop (so all stop at the same step)."""
    if accelerator.num_processes == 1:
        return flag
    import torch

    value = torch.tensor([1.0 if flag else 0.0], device=accelerator.device)
    return bool(accelerator.reduce(value, reduction="sum").item() > 0)


def _save(
    run: runs.Run, model: Any, optimizer: Any, scheduler: Any, state: TrainState, accelerator: Any
) -> None:
    if accelerator.is_main_process:
        save_checkpoint(run.checkpoint_dir, model, optimizer, scheduler, state)
    accelerator.wait_for_everyone()


def _update_summary(garden: Garden, run: runs.Run, state: TrainState) -> None:
    run.manifest.summary = {
        "steps": state.step,
        "tokens": state.tokens,
        "seconds": round(state.seconds, 2),
        "tokens_per_s": round(state.tokens / state.seconds, 1) if state.seconds else None,
        "val_loss": state.last_val,
        "best_val_loss": state.best_val,
        "train_loss": state.train_loss_at_last_val,
    }
    runs.save_manifest(garden, run)


_last_plot: dict[str, float] = {}


def _plot(run: runs.Run, *, every: float = 0.0) -> None:
    """Redraw the run's pictures (during training at most every ``every`` seconds: drawing
    takes longer than a step of a small model)."""
    from bonsai.train.plots import plot_run

    now = time.monotonic()
    if every and now - _last_plot.get(run.id, -every) < every:
        return
    _last_plot[run.id] = now
    entries = runs.read_metrics(run)
    title = f"{run.id} ({run.manifest.layout})"
    plot_run([e for e in entries if not _nan(e.get("loss"))], run.dir, title=title)


def _nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)
