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
questions; loops everywhere. Prints one table and a ``RESULT`` line per layout, then a
``DELTA`` line per layout: its difference from the default layout on the same items, with the
95% paired bootstrap interval (``open_qa_f1=+0.062[-0.008,+0.154]``); chrF is a corpus figure
and has none.

``--answers FILE`` scores the answers an earlier run wrote (``--out FILE``) again, training and
answering nothing; give it that run's ``--records``, ``--val`` and ``--per-category``.
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
from bonsai.evaluate.metrics import (
    chrf,
    is_looping,
    normalise,
    paired_bootstrap_delta,
    question_share,
)
from bonsai.garden import Garden
from bonsai.layouts import DEFAULT_REASONING_LAYOUT, parse_completion, render_prompt
from bonsai.nursery.build import Deal, NurseryConfig, deal, write_records
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


def item_figures(record: Record, answer: str) -> dict[str, float]:
    """One answer's figures (1.0 or 0.0, or a character F1): what :func:`score` averages."""
    category = record.category or "?"
    out: dict[str, float] = {"loops": float(is_looping(answer))}
    if category == "classification":
        out["labels"] = float(normalise(answer) == normalise(record.output))
    elif category == "translation":
        target = (record.language or "-").split("-")[-1]
        out["translation_lang"] = float(in_language(answer, target))
    elif category == "question_to_question":
        asked = sum(1 for line in answer.splitlines() if line.strip().endswith(("?", "？")))
        out["q2q"] = float(
            asked >= 2
            or (question_share(answer) >= 0.5 and answer.count("?") + answer.count("？") >= 2)
        )
    elif category in ("closed_qa", "open_qa"):
        out[f"{category}_f1"] = char_f1(answer, record.output)
    return out


def score(items: list[tuple[Record, str]]) -> dict[str, float]:
    """Per-category figures of (record, answer) pairs: the mean of :func:`item_figures`, and
    the corpus chrF of the translations."""
    sums: dict[str, list[float]] = defaultdict(list)
    for record, answer in items:
        for name, value in item_figures(record, answer).items():
            sums[name].append(value)
    out = {name: sum(values) / len(values) for name, values in sorted(sums.items())}
    translations = [(r, a) for r, a in items if r.category == "translation"]
    if translations:
        out["chrf"] = chrf([a for _, a in translations], [r.output for r, _ in translations])
    return out


def deltas(
    items: list[Record], said: dict[str, list[str]], against: str
) -> dict[str, dict[str, tuple[float, float, float] | None]]:
    """For each layout but ``against``: figure → (mean difference, low, high), the 95% paired
    bootstrap interval over the same items (None for fewer than five)."""

    def figures(layout: str) -> list[dict[str, float]]:
        return [item_figures(r, a) for r, a in zip(items, said[layout], strict=True)]

    base = figures(against)
    out: dict[str, dict[str, tuple[float, float, float] | None]] = {}
    for layout in said:
        if layout == against:
            continue
        mine = figures(layout)
        row: dict[str, tuple[float, float, float] | None] = {}
        for name in sorted({k for f in base for k in f}):
            pairs = [(b[name], m[name]) for b, m in zip(base, mine, strict=True) if name in b]
            interval = paired_bootstrap_delta([b for b, _ in pairs], [m for _, m in pairs])
            row[name] = (interval.mean, interval.low, interval.high) if interval else None
        out[layout] = row
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
    parser.add_argument(
        "--answers",
        type=Path,
        default=None,
        help="score the answers of an earlier run's --out file again (no training or answering)",
    )
    args = parser.parse_args()

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
    dealt = deal(config)
    items = pick_items(dealt.val, args.per_category, seed=1)
    if args.answers:
        results, said = earlier_answers(args.answers, items)
    else:
        results, said = train_and_answer(args, config, dealt, items)
    metrics = sorted({k for row in results.values() for k in row})
    print(f"{'layout':18}" + "".join(f"{m:>18}" for m in metrics))
    for layout, row in results.items():
        print(f"{layout:18}" + "".join(f"{row.get(m, float('nan')):>18.3f}" for m in metrics))
    for layout, row in results.items():
        figures = " ".join(f"{k}={v:.3f}" for k, v in sorted(row.items()))
        print(f"RESULT layout={layout} {figures}")
    for layout, row in deltas(items, said, against=DEFAULT_REASONING_LAYOUT).items():
        shown = " ".join(
            f"{name}={d[0]:+.3f}[{d[1]:+.3f},{d[2]:+.3f}]" if d else f"{name}=-"
            for name, d in row.items()
        )
        print(f"DELTA layout={layout} minus={DEFAULT_REASONING_LAYOUT} {shown}")
    if args.out:
        every = {
            layout: [
                {
                    "id": r.id,
                    "category": r.category or "",
                    "language": r.language or "",
                    "answer": a,
                    "reference": r.output,
                }
                for r, a in zip(items, answers_of, strict=True)
            ]
            for layout, answers_of in said.items()
        }
        args.out.write_text(
            json.dumps({"results": results, "answers": every}, ensure_ascii=False, indent=1),
            encoding="utf-8",
        )


def earlier_answers(
    path: Path, items: list[Record]
) -> tuple[dict[str, dict[str, float]], dict[str, list[str]]]:
    """Figures and answers of an earlier run's ``--out`` file, scored again for ``items``."""
    try:
        earlier = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SystemExit(f"{path}: cannot read the answers ({type(exc).__name__}: {exc})") from None
    if not isinstance(earlier, dict) or not {"answers", "results"} <= earlier.keys():
        raise SystemExit(f"{path}: not the --out file of a reasoning_layouts run (no answers)")
    results: dict[str, dict[str, float]] = {}
    said: dict[str, list[str]] = {}
    for layout in LAYOUTS:
        by_id = {a["id"]: a["answer"] for a in earlier["answers"].get(layout, [])}
        missing = [r.id for r in items if r.id not in by_id]
        if missing:
            raise SystemExit(
                f"{path}: no {layout} answer to {len(missing)} of the items ({missing[0]}, …);"
                " give the --records, --val and --per-category of that run"
            )
        said[layout] = [by_id[r.id] for r in items]
        results[layout] = score(list(zip(items, said[layout], strict=True)))
        for kept in ("val_loss", "train_s"):
            if kept in earlier["results"].get(layout, {}):
                results[layout][kept] = earlier["results"][layout][kept]
    return results, said


def train_and_answer(
    args: argparse.Namespace, config: NurseryConfig, dealt: Deal, items: list[Record]
) -> tuple[dict[str, dict[str, float]], dict[str, list[str]]]:
    """Train each layout (or take its finished run in the work garden) and answer ``items``."""
    from bonsai import runs
    from bonsai.train.args import TrainArgs
    from bonsai.train.loop import train

    garden = (
        Garden.init(args.work)
        if not (args.work / "bonsai.toml").exists()
        else Garden(args.work.resolve())
    )
    notes_path = write_records(garden, dealt)
    results: dict[str, dict[str, float]] = {}
    said: dict[str, list[str]] = {}
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
        said[layout] = answers(run.dir, layout, items, dealt.notes, config.base_model)
        results[layout] = score(list(zip(items, said[layout], strict=True)))
        results[layout]["val_loss"] = float(run.manifest.summary.get("val_loss", 0.0))
        results[layout]["train_s"] = round(trained, 1)
    return results, said


if __name__ == "__main__":
    main()
