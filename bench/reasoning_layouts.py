"""Where should the reasoning go? Three layouts trained on equal budgets, answers compared.

    python bench/reasoning_layouts.py --data ../shared/data --work /tmp/layouts [--steps 120]

Every record of the nursery's shard A (Japanese and English Dolly, translation records from
sentence pairs, the project's question-to-question and classification records, with notes as
chat gives them) gets a composed reasoning. The same records then train three runs from the bare
embedded student, each for the same number of optimizer steps of the same token budget:

* ``bonsai``: the reasoning first, then the answer (generated at chat time too);
* ``bonsai-after``: the answer first, then the reasoning (generation stops after the answer);
* ``bonsai-multitask``: the answer at once; the reasoning a second training task only.

Each run then answers the same held-out records (greedy, the prompt exactly as chat renders it,
the answer parsed as chat parses it), scored per category: closed_qa/open_qa by character F1
against the reference, classification by exact label, translation by chrF and by whether the
answer is in the target language, question_to_question by the share of answers with two or more
questions; loops everywhere. Prints one table and a ``RESULT`` line per layout.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

from bonsai.curate.language import script_language
from bonsai.evaluate.metrics import chrf, is_looping, normalise, question_share
from bonsai.garden import Garden
from bonsai.layouts import parse_completion, render_prompt
from bonsai.nursery.build import NurseryConfig, deal, write_records
from bonsai.records import Record

LAYOUTS = ("bonsai", "bonsai-after", "bonsai-multitask")
DATASET = "nursery"


def char_f1(prediction: str, reference: str) -> float:
    """Character-bag F1 after normalisation (works for Japanese, which has no spaces)."""
    pred, ref = (
        list(normalise(prediction).replace(" ", "")),
        list(normalise(reference).replace(" ", "")),
    )
    if not pred or not ref:
        return 0.0
    counts: dict[str, int] = defaultdict(int)
    for ch in ref:
        counts[ch] += 1
    common = 0
    for ch in pred:
        if counts[ch] > 0:
            counts[ch] -= 1
            common += 1
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def in_language(text: str, language: str) -> bool:
    found = script_language(text)
    return found == language if language in ("ja", "zh") else found is None and bool(text.strip())


def score(items: list[tuple[Record, str]]) -> dict[str, float]:
    """Per-category figures of (record, answer) pairs."""
    by: dict[str, list[tuple[Record, str]]] = defaultdict(list)
    for record, answer in items:
        by[record.category or "?"].append((record, answer))
    out: dict[str, float] = {}
    for category, pairs in sorted(by.items()):
        if category == "classification":
            out["labels"] = sum(normalise(a) == normalise(r.output) for r, a in pairs) / len(pairs)
        elif category == "translation":
            out["chrf"] = chrf([a for _, a in pairs], [r.output for r, _ in pairs])
            out["translation_lang"] = sum(
                in_language(a, (r.language or "-").split("-")[-1]) for r, a in pairs
            ) / len(pairs)
        elif category == "question_to_question":
            out["q2q"] = sum(
                sum(1 for line in a.splitlines() if line.strip().endswith(("?", "？"))) >= 2
                or (question_share(a) >= 0.5 and a.count("?") + a.count("？") >= 2)
                for _, a in pairs
            ) / len(pairs)
        elif category in ("closed_qa", "open_qa"):
            out[f"{category}_f1"] = sum(char_f1(a, r.output) for r, a in pairs) / len(pairs)
    out["loops"] = sum(is_looping(a) for _, a in items) / max(1, len(items))
    return out


def pick_items(records: list[Record], per_category: int, seed: int) -> list[Record]:
    rng = random.Random(seed)
    by: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        by[record.category or "?"].append(record)
    chosen = []
    for category in sorted(by):
        pool = by[category]
        rng.shuffle(pool)
        chosen += pool[:per_category]
    return chosen


def answers(run_dir: Path, layout: str, items: list[Record], notes: dict[str, str], base: str):
    """Greedy answers of the run's adapter to ``items``, as chat renders and parses them."""
    import torch
    from peft import PeftModel

    from bonsai.student import load_model, load_tokenizer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = load_tokenizer(base)
    tokenizer.padding_side = "left"
    model = load_model(base, dtype=torch.bfloat16)
    model = PeftModel.from_pretrained(model, run_dir / "adapter").to(device).eval()
    prompts = [render_prompt(layout, r, notes.get(r.id, "")) for r in items]
    budget = 320 if layout == "bonsai" else 192
    outputs: list[str] = []
    batch = 32 if device == "cuda" else 4
    for start in range(0, len(prompts), batch):
        chunk = prompts[start : start + batch]
        encoded = tokenizer(chunk, return_tensors="pt", padding=True).to(device)
        with torch.no_grad():
            generated = model.generate(
                **encoded,
                max_new_tokens=budget,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
            )
        for row in generated[:, encoded["input_ids"].shape[1] :]:
            outputs.append(tokenizer.decode(row, skip_special_tokens=True))
        print(f"  {layout}: {len(outputs)}/{len(prompts)} answered", file=sys.stderr, flush=True)
    return [parse_completion(layout, text)[1] for text in outputs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the shared data folder")
    parser.add_argument("--work", type=Path, required=True, help="work garden (resumable)")
    parser.add_argument("--records", type=int, default=3000, help="Japanese Dolly records")
    parser.add_argument("--steps", type=int, default=120, help="optimizer steps per layout")
    parser.add_argument("--batch-tokens", type=int, default=8192)
    parser.add_argument("--micro-tokens", type=int, default=None)
    parser.add_argument("--per-category", type=int, default=30, help="held-out items")
    parser.add_argument("--out", type=Path, default=None, help="JSON of every answer")
    parser.add_argument("--base-model", default=None, help="default: the embedded student")
    parser.add_argument("--val", type=int, default=300, help="held-out Japanese Dolly records")
    args = parser.parse_args()

    from bonsai import runs
    from bonsai.train.args import TrainArgs
    from bonsai.train.loop import train

    config = NurseryConfig(
        data_dir=args.data,
        work_dir=args.work,
        dolly_ja_per_shard=args.records,
        pairs_per_shard=600,
        reasoning_share=1.0,
        val_records=args.val,
        val_pairs=min(200, args.val),
    )
    if args.base_model:
        config.base_model = args.base_model
    garden = (
        Garden.init(args.work)
        if not (args.work / "bonsai.toml").exists()
        else Garden(args.work.resolve())
    )
    dealt = deal(config)
    notes_path = write_records(garden, dealt)
    items = pick_items(dealt.val, args.per_category, seed=1)
    results: dict[str, dict[str, float]] = {}
    every: dict[str, list[dict[str, str]]] = {}
    for layout in LAYOUTS:
        done = [
            r
            for r in runs.list_runs(garden, dataset=DATASET)
            if r.manifest.layout == layout and r.status == "finished"
        ]
        started = time.time()
        run = (
            done[-1]
            if done
            else train(
                garden,
                TrainArgs(
                    dataset=DATASET,
                    shard=0,
                    layout=layout,
                    max_steps=args.steps,
                    eval_every=args.steps,
                    batch_tokens=args.batch_tokens,
                    micro_tokens=args.micro_tokens,
                    max_length=512,
                    lora_rank=16,
                    lr=3e-4,
                    from_run="base",
                    base_model=config.base_model,
                    notes=str(notes_path),
                ),
            )
        )
        assert run is not None and run.status == "finished", layout
        trained = time.time() - started
        said = answers(run.dir, layout, items, dealt.notes, config.base_model)
        results[layout] = score(list(zip(items, said, strict=True)))
        results[layout]["val_loss"] = float(run.manifest.summary.get("val_loss", 0.0))
        results[layout]["train_s"] = round(trained, 1)
        every[layout] = [
            {"id": r.id, "category": r.category or "", "answer": a, "reference": r.output}
            for r, a in zip(items, said, strict=True)
        ]
    metrics = sorted({k for row in results.values() for k in row})
    print(f"{'layout':18}" + "".join(f"{m:>18}" for m in metrics))
    for layout, row in results.items():
        print(f"{layout:18}" + "".join(f"{row.get(m, float('nan')):>18.3f}" for m in metrics))
    for layout, row in results.items():
        figures = " ".join(f"{k}={v:.3f}" for k, v in sorted(row.items()))
        print(f"RESULT layout={layout} {figures}")
    if args.out:
        args.out.write_text(
            json.dumps({"results": results, "answers": every}, ensure_ascii=False, indent=1),
            encoding="utf-8",
        )


if __name__ == "__main__":
    main()
