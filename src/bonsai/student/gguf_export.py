"""A run as one GGUF file, for llama.cpp: the base model's own GGUF with the LoRA folded in.

The embedded student *is* a GGUF (Q4_K_M), so no converter is needed: every tensor and every
metadata field (tokenizer, chat template, architecture) is copied from it, except the linear
layers the adapter changed. Those are de-quantised, get the adapter's ``B @ A × scaling`` added
in float32, and are stored as F16 (by default: its rounding, ~1e-4 here, is far below the LoRA
change) or Q8_0 (smaller and faster, but its rounding is about as large as the change a short
run makes). Tensor names are matched with ``gguf``'s own Hugging Face → GGUF name map for the
architecture.

A run on another base model needs llama.cpp's ``convert_hf_to_gguf.py`` over the folder that
``bonsai merge RUN --out DIR`` writes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bonsai.errors import BonsaiError
from bonsai.util.atomic import atomic_path

GGUF_NAME = "model.gguf"
"""Where a run's GGUF lives in its folder (the llama.cpp engine looks for it there)."""
MERGED_TYPES = ("F16", "Q8_0")
"""How the merged layers may be stored; the first is the default."""
ADAPTER_PREFIX = "base_model.model."


@dataclass
class GgufExport:
    path: Path
    changed: int
    """Tensors the adapter changed (stored in the chosen type)."""
    copied: int
    """Tensors copied as they were."""
    bytes: int


def merged_type_name(value: str) -> str:
    """``value`` as one of :data:`MERGED_TYPES`, or a clear error."""
    name = value.strip().upper()
    if name not in MERGED_TYPES:
        raise BonsaiError(f"unknown GGUF type '{value}'", field="gguf-type", hint="f16 or q8_0")
    return name


def lora_deltas(adapter_dir: Path) -> dict[str, Any]:
    """Hugging Face weight name → the float32 change ``B @ A × scaling`` the adapter makes."""
    import torch
    from safetensors.torch import load_file

    config_path = adapter_dir / "adapter_config.json"
    weights_path = adapter_dir / "adapter_model.safetensors"
    for path in (config_path, weights_path):
        if not path.is_file():
            raise BonsaiError("the run's adapter is incomplete", file=path)
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if config.get("peft_type") != "LORA" or config.get("fan_in_fan_out"):
        raise BonsaiError("only plain LoRA adapters can be folded into a GGUF", file=config_path)
    rank, alpha = int(config["r"]), float(config["lora_alpha"])
    scaling = alpha / rank**0.5 if config.get("use_rslora") else alpha / rank
    weights = load_file(str(weights_path))
    deltas: dict[str, Any] = {}
    for key, a in weights.items():
        if ".lora_A." not in key:
            if ".lora_B." not in key:
                raise BonsaiError(
                    f"the adapter trains '{key}', which a GGUF export cannot fold in",
                    file=weights_path,
                )
            continue
        module = key.split(".lora_A.")[0].removeprefix(ADAPTER_PREFIX)
        b = weights.get(key.replace(".lora_A.", ".lora_B."))
        if b is None:
            raise BonsaiError(f"'{key}' has no lora_B beside it", file=weights_path)
        deltas[f"{module}.weight"] = (b.float() @ a.float()) * scaling
    if not deltas:
        raise BonsaiError("the adapter has no LoRA weights", file=weights_path)
    return {name: delta.to(torch.float32).numpy() for name, delta in deltas.items()}


def export_gguf(
    base_gguf: Path,
    adapter_dir: Path,
    out: Path,
    *,
    progress: Callable[[int, int], None] | None = None,
    merged_type: str = MERGED_TYPES[0],
) -> GgufExport:
    """Write ``base_gguf`` with the LoRA of ``adapter_dir`` folded in to ``out`` (atomically).
    ``merged_type``: one of :data:`MERGED_TYPES` (any case). ``progress(done, total)`` is called
    after each tensor."""
    import gguf
    import numpy as np

    merged_type = merged_type_name(merged_type)

    reader = gguf.GGUFReader(str(base_gguf))
    arch_name = str(reader.fields[gguf.Keys.General.ARCHITECTURE].contents())
    arch = next((a for a, name in gguf.MODEL_ARCH_NAMES.items() if name == arch_name), None)
    if arch is None:
        raise BonsaiError(f"unknown GGUF architecture '{arch_name}'", file=base_gguf)
    blocks = int(reader.fields[f"{arch_name}.block_count"].contents())
    names = gguf.get_tensor_name_map(arch, blocks)
    deltas: dict[str, Any] = {}
    for hf_name, delta in lora_deltas(adapter_dir).items():
        gguf_name = names.get_name(hf_name, try_suffixes=(".weight",))
        if gguf_name is None:
            raise BonsaiError(
                f"no tensor in the GGUF for the adapter's '{hf_name}'", file=base_gguf
            )
        deltas[gguf_name] = delta
    tensors = {t.name: t for t in reader.tensors}
    missing = sorted(set(deltas) - set(tensors))
    if missing:
        raise BonsaiError(f"the GGUF has no tensor '{missing[0]}'", file=base_gguf)

    quant = gguf.GGMLQuantizationType[merged_type]
    block = gguf.GGML_QUANT_SIZES[quant][0]

    def merged(tensor: Any) -> tuple[Any, Any]:
        weight = gguf.quants.dequantize(tensor.data, tensor.tensor_type).astype(np.float32)
        weight = weight + deltas[tensor.name]
        if quant == gguf.GGMLQuantizationType.F16 or weight.shape[-1] % block:
            return weight.astype(np.float16), gguf.GGMLQuantizationType.F16
        return gguf.quants.quantize(weight, quant), quant

    with atomic_path(out, suffix=".gguf") as tmp:
        writer = gguf.GGUFWriter(str(tmp), arch_name, endianess=reader.endianess)
        for field in reader.fields.values():
            if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
                continue  # written by the writer itself
            value_type = field.types[0]
            sub_type = field.types[-1] if value_type == gguf.GGUFValueType.ARRAY else None
            writer.add_key_value(field.name, field.contents(), value_type, sub_type=sub_type)
        new_data = {}
        for tensor in reader.tensors:
            if tensor.name in deltas:
                data, kind = merged(tensor)
                new_data[tensor.name] = data
            else:
                data, kind = tensor.data, tensor.tensor_type
            writer.add_tensor_info(tensor.name, data.shape, data.dtype, data.nbytes, kind)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for done, tensor in enumerate(reader.tensors, 1):
            writer.write_tensor_data(
                new_data.get(tensor.name, tensor.data), tensor_endianess=reader.endianess
            )
            if progress:
                progress(done, len(reader.tensors))
        writer.close()
        size = tmp.stat().st_size
    return GgufExport(out, len(deltas), len(reader.tensors) - len(deltas), size)
