"""A model folder that kokoro-js (npm) loads offline: the layout, names and tokenizer of
onnx-community/Kokoro-82M-v1.0-ONNX, holding one of our ONNX files.

kokoro-js loads ``StyleTextToSpeech2Model`` and ``AutoTokenizer`` through transformers.js
from ``config.json``, ``tokenizer.json``, ``tokenizer_config.json`` and ``onnx/model*.onnx``
(the suffix names the dtype), and feeds ``input_ids``, ``style`` and ``speed`` and reads
``waveform``. The kokoro-onnx export names them ``tokens`` and ``audio``, so the graph's
inputs and outputs are renamed; nothing else in it changes.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

import onnx

from parity.core.errors import ParityError

# kokoro-onnx's names -> the onnx-community names kokoro-js reads.
JS_NAMES = {"tokens": "input_ids", "audio": "waveform"}
# transformers.js's dtype -> file suffix (DEFAULT_DTYPE_SUFFIX_MAPPING in its utils/dtypes.js).
DTYPE_SUFFIX = {"fp32": "", "fp16": "_fp16", "q8": "_quantized", "int8": "_int8", "uint8": "_uint8"}
PAD = "$"  # Kokoro's pad symbol, id 0, at both ends of every request


def tokenizer_json(vocab: Mapping[str, int]) -> dict[str, object]:
    """A tokenizers-format tokenizer: one token per phoneme character, padded with ``$``."""
    special = {"SpecialToken": {"id": PAD, "type_id": 0}}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [],
        "normalizer": None,
        # "." splits into single characters; each is one Kokoro symbol.
        "pre_tokenizer": {
            "type": "Split",
            "pattern": {"Regex": "."},
            "behavior": "Isolated",
            "invert": False,
        },
        "model": {"type": "WordLevel", "vocab": {PAD: 0, **vocab}, "unk_token": PAD},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [special, {"Sequence": {"id": "A", "type_id": 0}}, special],
            "pair": [
                special,
                {"Sequence": {"id": "A", "type_id": 0}},
                {"Sequence": {"id": "B", "type_id": 1}},
                special,
            ],
            "special_tokens": {PAD: {"id": PAD, "ids": [0], "tokens": [PAD]}},
        },
        "decoder": None,
    }


def rename_io(model: onnx.ModelProto, names: Mapping[str, str]) -> onnx.ModelProto:
    """``model`` with graph inputs and outputs renamed (and every node reading or writing
    them); names already in the target form are left alone."""
    taken = {value for node in model.graph.node for value in (*node.input, *node.output)}
    clashes = sorted(new for old, new in names.items() if new in taken and old in taken)
    if clashes:
        raise ParityError(f"kokoro-js folder: the graph already has a value named {clashes[0]}")
    for node in model.graph.node:
        node.input[:] = [names.get(name, name) for name in node.input]
        node.output[:] = [names.get(name, name) for name in node.output]
    for value in (*model.graph.input, *model.graph.output):
        value.name = names.get(value.name, value.name)
    return model


def write_model_folder(
    model_path: Path, folder: Path, vocab: Mapping[str, int], dtype: str = "fp32"
) -> Path:
    """Write ``folder`` (replacing it whole, atomically) for kokoro-js to load from disk, with
    transformers.js's remote models off and ``folder``'s parent as its local model path
    (``parity/measure/kokoro-js/speak.mjs``); returns the ONNX file inside."""
    if dtype not in DTYPE_SUFFIX:
        raise ParityError(
            f"kokoro-js folder: unknown dtype {dtype!r}; use {', '.join(DTYPE_SUFFIX)}"
        )
    model = onnx.load(str(model_path))
    graph_names = {value.name for value in (*model.graph.input, *model.graph.output)}
    wanted = {"input_ids", "style", "speed", "waveform"}
    missing = sorted(wanted - {JS_NAMES.get(name, name) for name in graph_names})
    if missing:
        raise ParityError(
            f"kokoro-js folder: {model_path} has no {missing[0]} (nor its kokoro-onnx name); "
            "kokoro-js feeds input_ids, style, speed and reads waveform"
        )
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        onnx_file = staging / "onnx" / f"model{DTYPE_SUFFIX[dtype]}.onnx"
        onnx_file.parent.mkdir()
        onnx.save(rename_io(model, JS_NAMES), str(onnx_file))
        texts = {
            "config.json": {"model_type": "style_text_to_speech_2"},
            "tokenizer.json": tokenizer_json(vocab),
            "tokenizer_config.json": {
                "model_max_length": 512,
                "pad_token": PAD,
                "tokenizer_class": "PreTrainedTokenizer",
            },
        }
        for name, document in texts.items():
            (staging / name).write_text(json.dumps(document, ensure_ascii=False), "utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder / "onnx" / onnx_file.name
