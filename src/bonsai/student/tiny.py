"""Test support: tiny models built from a config in-process, no downloads, trained in seconds.

Used by the tests and ``bench/`` only; no stage of BONSAI loads a tiny model on its own.

The tokenizer is a small byte-level BPE trained on a built-in multilingual text, so Japanese and
Chinese round-trip like they do with the real student. Like Gemma's, it adds ``<bos>`` itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

_CORPUS = [
    "Mochi is a six-year-old tabby cat. She eats wet food twice a day.",
    "What is the highest mountain in Japan? Mount Fuji is the highest mountain in Japan.",
    "Translate into English: 猫に水をあげてください。 Please give the cat water.",
    "富士山は日本で一番高い山です。もちは六歳の猫です。毎日ブラッシングをします。",
    "猫每天需要喝水。请带猫去看兽医。",
    "You should read the question, find the fact, and answer in one sentence.",
    "Creator should ask a sharper question: what do you really want to know?",
    "### Instruction:\n### Input:\n### Response:\n### Reasoning:\n### Category:\n### Language:",
    "open_qa closed_qa classification translation brainstorming creative question_to_question",
]
SPECIAL_TOKENS = ["<pad>", "<eos>", "<bos>", "<unk>"]


def build_tiny_tokenizer(out: Path, vocab_size: int = 512):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_CORPUS * 4, trainer=trainer)
    bos = tokenizer.token_to_id("<bos>")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", bos)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
    )
    fast.save_pretrained(out)
    return fast


def build_tiny_model(out: str | Path, *, arch: str = "gemma3", seed: int = 0) -> Path:
    """Write a 2-layer model of the given architecture ('gemma3' or 'llama') and its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tiny_tokenizer(out)
    common = dict(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    config: Any
    if arch == "gemma3":
        from transformers import Gemma3TextConfig

        config = Gemma3TextConfig(**common, sliding_window=128, query_pre_attn_scalar=16)
    elif arch == "llama":
        from transformers import LlamaConfig

        config = LlamaConfig(**common)
    else:
        raise ValueError(f"unknown tiny architecture {arch!r}: use 'gemma3' or 'llama'")
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(out)
    return out
