"""Training throughput: BONSAI's loop against stock TRL ``SFTTrainer`` (bf16=True), side by side.

Both fine-tune the embedded Gemma 3 270M with the same LoRA (rank 16, alpha 32, every linear
layer), on the same records in the same prompt layout (``bonsai``: loss on the reasoning and the
answer only), with the same budget of 4 × 256 token slots per step, the same number of steps and
the same learning-rate schedule (1 warmup step, cosine to 0). Each runs in its own process, one
after the other, with the same number of CPU threads. Then both adapters are scored by the same
validation-loss function (``bonsai.train.evaluate.validation_loss``) on the same float32 base.

Throughput counts real tokens (prompt and target, no padding) per second of training step,
leaving out the first step (one-time setup). MFU is BONSAI's needed FLOPs per second (see
``bonsai.train.flops``) over the matmul peak measured in this run (2048², best of several) in
bf16 and in fp32: ``mfu`` uses the faster of the two (where a CPU emulates bf16 more slowly than
fp32, ``auto`` trains in fp32 and the bf16 peak alone would overstate it), ``mfu_bf16`` the bf16
peak.

    .venv/bin/python bench/train_throughput.py [--steps 6] [--threads N] [--skip-trl]

Needs ``trl`` (a benchmark-only dependency). Prints ``RESULT tokens_per_s=… trl_tokens_per_s=…
ratio=… mfu=… val_loss=… trl_val_loss=… peak_mb=…``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOLLY = ROOT.parent / "shared" / "data" / "dolly" / "dolly-sample.jsonl"
MODEL = "embedded:gemma-3-270m"
LAYOUT = "bonsai"
BATCH = 4
MAX_LENGTH = 256
RANK, ALPHA = 16, 32
LR = 2e-4
SEED = 0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- the data both trainers see -------------------------------------------------------------------


def load_records() -> tuple[list, str]:
    """The sample garden's records, else the Dolly sample, else synthetic ones; with a fixed
    train/validation split (the same for both trainers)."""
    from bonsai.curate.split import SplitArgs, assign_splits
    from bonsai.records import Record, normalise_category
    from bonsai.sample import records_path

    if records_path().is_file():
        lines = records_path().read_text(encoding="utf-8").splitlines()
        records = [Record(**json.loads(line)) for line in lines]
        source = "sample cat-care.jsonl"
    elif DOLLY.is_file():
        records = []
        for i, line in enumerate(DOLLY.read_text(encoding="utf-8").splitlines()):
            row = json.loads(line)
            records.append(Record(
                id=f"dolly-{i}", instruction=row["instruction"], input=row.get("context", ""),
                output=row["response"], category=normalise_category(row.get("category")),
                language="en", reasoning="You should answer the instruction directly.",
            ))  # fmt: skip
        source = "Dolly sample"
    else:
        records = [
            Record(
                id=f"syn-{i}", instruction=f"What is {i} plus {i}?", category="open_qa",
                output=f"{i} plus {i} is {2 * i}.", language="en",
                reasoning="You should add the two numbers.",
            )
            for i in range(200)
        ]  # fmt: skip
        source = "synthetic"
    return assign_splits(records, SplitArgs(val=0.1, seed=SEED)).records, source


def make_garden(folder: Path):
    from bonsai.garden import Garden
    from bonsai.store import Change, RecordStore

    records, source = load_records()
    garden = Garden.init(folder)
    RecordStore(garden.db).apply(
        "bench", [Change(None, r) for r in records], kind="import", description=source
    )
    return garden, source


def train_args(steps: int, threads: int, precision: str):
    from bonsai.train.args import TrainArgs

    return TrainArgs(
        dataset="bench", base_model=MODEL, layout=LAYOUT, max_steps=steps,
        batch_tokens=BATCH * MAX_LENGTH, micro_tokens=BATCH * MAX_LENGTH, max_length=MAX_LENGTH,
        lr=LR, warmup=1 / steps, lora_rank=RANK, lora_alpha=ALPHA, eval_every=steps,
        save_every=steps, precision=precision, threads=threads, seed=SEED,
    )  # fmt: skip


# -- workers (each in its own process) ------------------------------------------------------------


def worker_bonsai(steps: int, threads: int, precision: str, out: Path) -> dict:
    import io

    from rich.console import Console

    from bonsai import runs
    from bonsai.train.flops import model_shape, step_flops
    from bonsai.train.loop import train
    from bonsai.train.model import add_lora, load_base
    from bonsai.train.prepare import prepare

    garden, source = make_garden(out / "garden")
    args = train_args(steps, threads, precision)
    console = Console(file=io.StringIO(), width=200)
    run = train(garden, args, console=console)
    assert run is not None and run.status == "finished", console.file.getvalue()
    peak_mb = peak_rss_mb()  # before the FLOP count below loads a second copy of the model
    steps_done = [e for e in runs.read_metrics(run) if e["kind"] == "train"]
    timed = steps_done[1:]  # the first step pays one-time costs
    previous = steps_done[0]["tokens"]
    tokens = 0
    seconds = 0.0
    for e in timed:
        step_tokens = e["tokens"] - previous
        previous = e["tokens"]
        tokens += step_tokens
        seconds += step_tokens / e["tokens_per_s"]

    prep = prepare(garden, args)
    shape = model_shape(
        add_lora(load_base(MODEL, "fp32"), rank=RANK, alpha=ALPHA, targets="all-linear",
                 dropout=0.0, seed=SEED)
    )  # fmt: skip
    flops = 0.0
    for step in prep.plan[1:]:
        examples = [prep.train[i] for row in step.rows for i in row]
        flops += step_flops(
            shape, [len(e.input_ids) for e in examples], sum(e.n_target for e in examples)
        )
    examples_seen = sum(len(row) for step in prep.plan for row in step.rows)
    return {
        "tokens": tokens, "seconds": seconds, "tokens_per_s": tokens / seconds,
        "flops_per_s": flops / seconds, "adapter": str(run.adapter_dir),
        "precision": run.manifest.args["precision"], "examples_seen": examples_seen,
        "peak_mb": peak_mb, "source": source, "train_examples": len(prep.train),
    }  # fmt: skip


def worker_trl(steps: int, threads: int, out: Path) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from bonsai.layouts import missing_fields, render_prompt, render_target
    from bonsai.student import resolve_base_model

    torch.set_num_threads(threads)
    records, _ = load_records()
    train = [r for r in records if r.split == "train" and not missing_fields(LAYOUT, r)]
    dataset = Dataset.from_list(
        [
            {"prompt": render_prompt(LAYOUT, r), "completion": render_target(LAYOUT, r)}
            for r in train
        ]
    )

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.started = 0.0
            self.durations: list[float] = []

        def on_step_begin(self, args, state, control, **kwargs):
            self.started = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.durations.append(time.perf_counter() - self.started)

    timer = StepTimer()
    config = SFTConfig(
        output_dir=str(out / "trl"), bf16=True, use_cpu=True, max_steps=steps,
        per_device_train_batch_size=BATCH, gradient_accumulation_steps=1, max_length=MAX_LENGTH,
        learning_rate=LR, lr_scheduler_type="cosine", warmup_steps=1, logging_steps=1,
        save_strategy="no", report_to=[], seed=SEED, data_seed=SEED,
    )  # fmt: skip
    peft_config = LoraConfig(
        r=RANK,
        lora_alpha=ALPHA,
        lora_dropout=0.0,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )
    trainer = SFTTrainer(
        model=resolve_base_model(MODEL), args=config, train_dataset=dataset,
        peft_config=peft_config, callbacks=[timer],
    )  # fmt: skip
    trainer.train()
    cumulative = [e["num_tokens"] for e in trainer.state.log_history if "num_tokens" in e]
    per_step = [b - a for a, b in zip([0, *cumulative[:-1]], cumulative, strict=True)]
    tokens = sum(per_step[1:])
    seconds = sum(timer.durations[1:])
    adapter = out / "trl-adapter"
    trainer.model.save_pretrained(adapter)
    return {
        "tokens": tokens, "seconds": seconds, "tokens_per_s": tokens / seconds,
        "adapter": str(adapter), "peak_mb": peak_rss_mb(), "examples_seen": steps * BATCH,
        "gradient_checkpointing": config.gradient_checkpointing,
    }  # fmt: skip


# -- the comparison -------------------------------------------------------------------------------


def run_worker(kind: str, steps: int, threads: int, precision: str, out: Path) -> dict:
    result_file = out / f"{kind}.json"
    command = [
        sys.executable, __file__, "--worker", kind, "--steps", str(steps), "--threads",
        str(threads), "--precision", precision, "--out", str(out),
    ]  # fmt: skip
    started = time.time()
    subprocess.run(command, check=True)
    result = json.loads(result_file.read_text())
    result["wall_s"] = time.time() - started
    return result


def validation_losses(adapters: dict[str, str], garden_dir: Path) -> dict[str, float]:
    """Each adapter scored by the same function, on the same float32 base and examples."""
    from peft import PeftModel

    from bonsai.garden import Garden
    from bonsai.train.evaluate import validation_loss
    from bonsai.train.model import load_base
    from bonsai.train.prepare import prepare

    garden = Garden.open(garden_dir)
    prep = prepare(garden, train_args(2, 1, "fp32"))
    losses = {}
    for name, adapter in adapters.items():
        model = PeftModel.from_pretrained(load_base(MODEL, "fp32"), adapter)
        losses[name] = validation_loss(model, prep.val, micro_tokens=BATCH * MAX_LENGTH).mean
    return losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=6, help="optimizer steps for each trainer")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: derived)")
    parser.add_argument("--precision", default="auto", help="BONSAI's precision (auto/bf16/fp32)")
    parser.add_argument("--skip-trl", action="store_true", help="only measure BONSAI's loop")
    parser.add_argument("--worker", choices=["bonsai", "trl"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    opts = parser.parse_args()

    if opts.worker:
        if opts.worker == "bonsai":
            result = worker_bonsai(opts.steps, opts.threads, opts.precision, opts.out)
        else:
            result = worker_trl(opts.steps, opts.threads, opts.out)
        (opts.out / f"{opts.worker}.json").write_text(json.dumps(result))
        return

    import torch

    from bonsai.student import ensure_embedded_model
    from bonsai.train.args import available_threads
    from bonsai.train.model import matmul_gflops

    ensure_embedded_model()
    threads = opts.threads or available_threads()[0]
    torch.set_num_threads(threads)
    peak_bf16 = matmul_gflops(torch.bfloat16, n=2048, seconds=1.0) * 1e9
    peak_fp32 = matmul_gflops(torch.float32, n=2048, seconds=1.0) * 1e9
    print(f"threads {threads}; matmul peak 2048²: bf16 {peak_bf16 / 1e9:.0f}, fp32 "
          f"{peak_fp32 / 1e9:.0f} GFLOP/s", flush=True)  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="bonsai-bench-") as tmp:
        out = Path(tmp)
        ours = run_worker("bonsai", opts.steps, threads, opts.precision, out)
        print(f"BONSAI: {ours['tokens_per_s']:.1f} tokens/s ({ours['precision']}), "
              f"{ours['examples_seen']} examples seen, peak {ours['peak_mb']:.0f} MB, "
              f"{ours['wall_s']:.0f} s in all", flush=True)  # fmt: skip
        adapters = {"bonsai": ours["adapter"]}
        theirs = None
        if not opts.skip_trl:
            theirs = run_worker("trl", opts.steps, threads, opts.precision, out)
            print(f"TRL SFTTrainer (bf16=True, gradient checkpointing "
                  f"{theirs['gradient_checkpointing']}): {theirs['tokens_per_s']:.1f} tokens/s, "
                  f"{theirs['examples_seen']} examples seen, peak {theirs['peak_mb']:.0f} MB, "
                  f"{theirs['wall_s']:.0f} s in all", flush=True)  # fmt: skip
            adapters["trl"] = theirs["adapter"]
        losses = validation_losses(adapters, out / "garden")

    # The headline MFU is against the faster of the two measured peaks (conservative): where the
    # CPU emulates bf16 at below fp32 speed, the loop trains in fp32 and a bf16 peak would flatter.
    mfu = ours["flops_per_s"] / max(peak_bf16, peak_fp32)
    mfu_bf16 = ours["flops_per_s"] / peak_bf16
    fields = {
        "tokens_per_s": f"{ours['tokens_per_s']:.1f}",
        "trl_tokens_per_s": f"{theirs['tokens_per_s']:.1f}" if theirs else "nan",
        "ratio": f"{ours['tokens_per_s'] / theirs['tokens_per_s']:.2f}" if theirs else "nan",
        "mfu": f"{mfu:.3f}",
        "mfu_bf16": f"{mfu_bf16:.3f}",
        "val_loss": f"{losses['bonsai']:.4f}",
        "trl_val_loss": f"{losses['trl']:.4f}" if theirs else "nan",
        "peak_mb": f"{ours['peak_mb']:.0f}",
        "trl_peak_mb": f"{theirs['peak_mb']:.0f}" if theirs else "nan",
        "precision": ours["precision"],
        "threads": str(threads),
        "steps": str(opts.steps),
        "peak_bf16_gflops": f"{peak_bf16 / 1e9:.0f}",
        "peak_fp32_gflops": f"{peak_fp32 / 1e9:.0f}",
    }
    print("RESULT " + " ".join(f"{k}={v}" for k, v in fields.items()))


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
