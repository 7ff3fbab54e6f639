"""Pipeline families: which text encoders a diffusion pipeline has, which of their outputs it reads,
and how an edited encoder's output reaches it.

| family | pipelines | encoders (component: what the pipeline reads) | SAE's default site |
|---|---|---|---|
| `sd1` | SD v1.x | `text_encoder` (CLIP ViT-L/14, 12 blocks): last hidden state | encoder 0, block 9 |
| `sd2` | SD 2.x, SD-Turbo | `text_encoder` (OpenCLIP ViT-H, kept to 23 of its 24 blocks: the penultimate layer): last hidden state | encoder 0, block 18 |
| `sdxl` | SDXL, SDXL-Turbo | `text_encoder` (CLIP ViT-L): hidden_states[-2]; `text_encoder_2` (OpenCLIP bigG, 32 blocks): hidden_states[-2] and its projected pooled vector | encoder 1, block 28 |
| `flux` | FLUX.1 | `text_encoder` (CLIP ViT-L): pooled vector only; `text_encoder_2` (T5 v1.1 XXL, 24 blocks): last hidden state | encoder 1, block 22 |

The SAE sits on one block of one encoder (`SAEConfig.encoder_index`, `layer`). `conditioning` runs every
encoder as the pipeline would, the SAE's encoder with the method's edit hooked in, so the edit reaches
every output read from that encoder in the same forward pass (SDXL's bigG: its half of `prompt_embeds`
and `pooled_prompt_embeds`); the other encoders run unedited. Text-level methods (a negative prompt,
word removal) act on every encoder. Why each default: docs/choices.md.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from snce_lib.models.encoders import EncoderError, TextEncoder, _place, pick_device


@dataclass(frozen=True)
class Slot:
    """One text encoder of a pipeline, as the pipeline calls it."""

    component: str  # the pipeline's attribute: "text_encoder", "text_encoder_2"
    tokenizer: str
    read: str  # "last", "penultimate" or "pooled" (TextEncoder.read)
    pooled: str = ""  # "", "pooler", "text_embeds"
    max_length: int | None = None  # None: the tokenizer's own
    default_block: int | None = None


@dataclass(frozen=True)
class PipelineFamily:
    name: str
    title: str
    pipeline_class: str
    slots: tuple[Slot, ...]
    default_encoder: int
    negatives: bool = True  # False: the pipeline takes no negative prompt (FLUX.1's distilled guidance)

    def slot(self, index: int) -> Slot:
        if not 0 <= index < len(self.slots):
            raise EncoderError(
                f"{self.title} has {len(self.slots)} text encoder(s); encoder index {index} does not exist "
                f"(valid: 0..{len(self.slots) - 1})"
            )
        return self.slots[index]


FAMILIES = {
    "sd1": PipelineFamily("sd1", "Stable Diffusion v1.x", "StableDiffusionPipeline",
                          (Slot("text_encoder", "tokenizer", "last", default_block=9),), 0),
    "sd2": PipelineFamily("sd2", "Stable Diffusion 2.x / SD-Turbo", "StableDiffusionPipeline",
                          (Slot("text_encoder", "tokenizer", "last", default_block=18),), 0),
    "sdxl": PipelineFamily("sdxl", "SDXL", "StableDiffusionXLPipeline",
                           (Slot("text_encoder", "tokenizer", "penultimate", default_block=10),
                            Slot("text_encoder_2", "tokenizer_2", "penultimate", "text_embeds", default_block=28)), 1),
    # FLUX.1-schnell takes at most 256 T5 tokens (its model card); the pipeline's default of 512 is FLUX.1-dev's
    "flux": PipelineFamily("flux", "FLUX.1", "FluxPipeline",
                           (Slot("text_encoder", "tokenizer", "pooled", "pooler", default_block=9),
                            Slot("text_encoder_2", "tokenizer_2", "last", max_length=256, default_block=22)), 1,
                           negatives=False),
}  # fmt: skip
#: SD 2.x's text encoder is OpenCLIP ViT-H cut to 23 blocks (SD v1.x's CLIP has 12): how `sd1` and `sd2`,
#: which share one pipeline class, are told apart.
SD2_BLOCKS = 23


def family_named(name: str) -> PipelineFamily:
    if name not in FAMILIES:
        raise EncoderError(f"unknown pipeline family {name!r}; families: {', '.join(FAMILIES)}")
    return FAMILIES[name]


def family_from_index(index: dict, text_blocks: int | None = None) -> PipelineFamily:
    """The family of a pipeline from its `model_index.json` (and, for StableDiffusionPipeline, the
    number of blocks of its text encoder)."""
    cls = str(index.get("_class_name", ""))
    if cls == "StableDiffusionPipeline":
        return FAMILIES["sd2" if text_blocks == SD2_BLOCKS else "sd1"]
    for fam in FAMILIES.values():
        if fam.pipeline_class == cls:
            return fam
    known = sorted({f.pipeline_class for f in FAMILIES.values()})
    raise EncoderError(f"pipeline class {cls or '?'} is not supported; supported: {', '.join(known)}")


def _blocks_of(model) -> int | None:
    cfg = model.config
    return getattr(cfg, "num_hidden_layers", None) or getattr(cfg, "num_layers", None)


def family_of(pipe) -> PipelineFamily:
    """The family of a loaded pipeline. Pipelines that hold their own family (the toy worlds) say so."""
    own = getattr(pipe, "snce_family", None)
    if own is not None:
        return family_named(own)
    text = getattr(pipe, "text_encoder", None)
    blocks = _blocks_of(text) if text is not None else None
    # the class or a known one it derives from (a hooked pipeline); else, for a wrapper, its components
    known = {f.pipeline_class for f in FAMILIES.values()}
    name = next((c.__name__ for c in type(pipe).__mro__ if c.__name__ in known), None)
    if name is None and text is not None:
        second = getattr(getattr(getattr(pipe, "text_encoder_2", None), "config", None), "model_type", None)
        name = {None: "StableDiffusionPipeline", "t5": "FluxPipeline"}.get(second, "StableDiffusionXLPipeline")
    return family_from_index({"_class_name": name or type(pipe).__name__}, blocks)


def wrap(model, tok, encoder_id: str, family: PipelineFamily, index: int) -> TextEncoder:
    """A TextEncoder for encoder `index` of a pipeline of `family`, called as that pipeline calls it."""
    slot = family.slot(index)
    kind = {"clip_text_model": "clip", "clip_text_with_projection": "clip", "bert": "bert", "t5": "t5"}.get(
        getattr(model.config, "model_type", ""), None
    )
    if kind is None:
        raise EncoderError(f"unsupported text encoder type {getattr(model.config, 'model_type', '?')!r}")
    use_mask = bool(getattr(model.config, "use_attention_mask", False)) if kind == "clip" else kind == "bert"
    max_length = slot.max_length or int(getattr(tok, "model_max_length", 77))
    if max_length > 512:  # tokenizers without a sensible limit
        max_length = 77
    blocks = _blocks_of(model)
    default = slot.default_block
    if family.name == "sd1" and blocks not in (None, 12):
        default = None  # another CLIP depth under SD v1's pipeline: the encoder kind's default
    return TextEncoder(model, tok, encoder_id, kind, max_length, use_mask, slot.component, slot.read, slot.pooled,
                       index, default)  # fmt: skip


def pipeline_encoder(pipe, index: int | None = None) -> TextEncoder:
    """Encoder `index` of a loaded pipeline (default: the family's SAE site), sharing its weights."""
    family = family_of(pipe)
    index = family.default_encoder if index is None else int(index)
    slot = family.slot(index)
    model, tok = getattr(pipe, slot.component, None), getattr(pipe, slot.tokenizer, None)
    if model is None or tok is None:
        raise EncoderError(f"pipeline {type(pipe).__name__} has no {slot.component}/{slot.tokenizer}")
    name = getattr(pipe, "name_or_path", None) or getattr(pipe.config, "_name_or_path", "pipeline")
    return wrap(model, tok, name, family, index)


# ---- loading one encoder of a pipeline on disk or on the hub --------------------------------------
def read_model_index(spec: str) -> dict | None:
    """The pipeline's `model_index.json` from a local folder or the hub cache (None: a bare encoder folder)."""
    if os.path.isdir(spec):
        path = Path(spec) / "model_index.json"
        return json.loads(path.read_text()) if path.exists() else None
    from huggingface_hub import hf_hub_download

    return json.loads(Path(hf_hub_download(spec, "model_index.json")).read_text())


def _classes(index: dict, component: str) -> str:
    entry = index.get(component) or [None, None]
    return str(entry[1])


def load_pipeline_encoder(spec: str, index: int | None = None, device=None, fp16: bool | None = None) -> TextEncoder:
    """Encoder `index` (default: the family's SAE site) of the pipeline at `spec` (hub id or folder),
    loaded alone with the class its `model_index.json` names."""
    import transformers

    model_index = read_model_index(spec)
    # a preliminary family from the class name; SD v1 and 2 are told apart once the encoder is loaded
    family = family_from_index(model_index)
    index = family.default_encoder if index is None else int(index)
    slot = family.slot(index)
    cls_name, tok_name = _classes(model_index, slot.component), _classes(model_index, slot.tokenizer)
    model_cls, tok_cls = getattr(transformers, cls_name, None), getattr(transformers, tok_name, None)
    if model_cls is None or tok_cls is None:
        raise EncoderError(f"{spec}: this transformers has no {cls_name} or {tok_name}; upgrade transformers")
    try:
        model = model_cls.from_pretrained(spec, subfolder=slot.component)
        tok = tok_cls.from_pretrained(spec, subfolder=slot.tokenizer)
    except (OSError, ValueError) as exc:
        raise EncoderError(f"cannot load {slot.component} of {spec!r}: {exc}".splitlines()[0]) from exc
    family = family_from_index(model_index, _blocks_of(model))
    enc = wrap(model, tok, spec, family, index)
    enc.model = _place(enc.model, pick_device(device), fp16)
    return enc


# ---- conditioning a pipeline ---------------------------------------------------------------------
def edited_encoder(method) -> int | None:
    """Which encoder a method edits: its SAE's `encoder_index`, its own `encoder_index`, or None for a
    method that changes the text (every encoder reads the changed text)."""
    if method is None or getattr(method, "text_level", False):
        return None
    sae = getattr(method, "sae", None)
    if sae is not None:
        return int(getattr(sae.cfg, "encoder_index", 0))
    return int(getattr(method, "encoder_index", 0))


def _run(enc: TextEncoder, method, prompts, negs):
    """(seq, pooled, negative seq or None, negative pooled or None) of one encoder, `method` applied."""
    with enc.recording():
        if method is None:
            pe = enc.embed(enc.tokenize(prompts))
            ne = None if negs is None else enc.embed(enc.tokenize(negs))
        else:
            pe, ne = method.embed(enc, prompts, negs)
        return pe, enc.pooled_of(pe), ne, (None if ne is None else enc.pooled_of(ne))


@torch.no_grad()
def conditioning(pipe, prompts, method=None, negative_prompts=None) -> dict:
    """The keyword arguments that condition `pipe` on `prompts` (`prompt_embeds`, and per family
    `negative_prompt_embeds`, `pooled_prompt_embeds`, `negative_pooled_prompt_embeds`).

    `method` is anything with `embed(encoder, prompts, negative_prompts) -> (pe, ne)` (the SNCE eraser
    or any method of the comparison); None runs the encoders unedited. The negative prompt is what the
    pipeline itself would use: the empty prompt, or zeros where the pipeline zeroes an empty one (SDXL).
    """
    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    family = family_of(pipe)
    target = edited_encoder(method)
    if target is not None:
        family.slot(target)  # an SAE of an encoder this pipeline does not have: say so
    zeros = family.name == "sdxl" and bool(getattr(pipe.config, "force_zeros_for_empty_prompt", False))
    if negative_prompts is not None:
        negs = list(negative_prompts)
    elif not family.negatives or zeros:
        negs = None
    else:
        negs = [""] * len(prompts)
    outs = []
    for i in range(len(family.slots)):
        enc = pipeline_encoder(pipe, i)
        m = method if (method is not None and (target is None or target == i)) else None
        if m is not None and target is not None:
            check_reach(enc, m)
        outs.append(_run(enc, m, prompts, negs))
    if family.name in ("sd1", "sd2"):
        pe, _, ne, _ = outs[0]
        return {"prompt_embeds": pe, "negative_prompt_embeds": ne}
    if family.name == "sdxl":
        pe = torch.cat([o[0] for o in outs], dim=-1)
        pooled = outs[-1][1]
        if any(o[2] is None for o in outs):  # no negative asked for: the pipeline's zeros
            ne, npooled = torch.zeros_like(pe), torch.zeros_like(pooled)
        else:
            ne, npooled = torch.cat([o[2] for o in outs], dim=-1), outs[-1][3]
        return {"prompt_embeds": pe, "pooled_prompt_embeds": pooled, "negative_prompt_embeds": ne,
                "negative_pooled_prompt_embeds": npooled}  # fmt: skip
    # flux: CLIP's pooled vector and T5's sequence; no negative prompt
    if any(o[2] is not None for o in outs):
        raise EncoderError(f"{family.title} takes no negative prompt: this method ({type(method).__name__}) "
                           "works through one and does not apply")  # fmt: skip
    return {"prompt_embeds": outs[1][0], "pooled_prompt_embeds": outs[0][1]}


def reaches(encoder: TextEncoder, block: int) -> list[str]:
    """What an edit of `block`'s output reaches of what the pipeline reads from `encoder`."""
    n = len(encoder.block_names)
    out = []
    if encoder.read == "last" or (encoder.read == "penultimate" and block <= n - 2):
        out.append("sequence")
    if encoder.pooled:
        out.append("pooled")
    return out


def check_reach(encoder: TextEncoder, method) -> None:
    sae = getattr(method, "sae", None)
    layer = sae.cfg.layer if sae is not None else getattr(method, "layer", None)
    _, idx = encoder.resolve_layer(layer or None)
    if not reaches(encoder, idx):
        raise EncoderError(
            f"block {idx} of {encoder.component} comes after the hidden state the pipeline reads "
            f"(hidden_states[-2], block {len(encoder.block_names) - 2}): an edit there changes nothing it reads"
        )


def site(encoder: TextEncoder, layer=None) -> str:
    """Where an SAE on `encoder` at `layer` sits, and what of the pipeline's input an edit there reaches,
    in one sentence (blocks count from 0)."""
    name, idx = encoder.resolve_layer(layer)
    n = len(encoder.block_names)
    what = f"{type(encoder.model).__name__}, {encoder.width} wide, {n} blocks"
    if encoder.family == "bert":
        who = "MiniLM-L6 (offline)" if encoder.encoder_id == "offline" else encoder.encoder_id
        return f"{who}: {what}, block {idx} (`{name}`; blocks count from 0)"
    reads = {"last": "its last hidden state", "penultimate": "hidden_states[-2], the output of block "
             f"{n - 2}", "pooled": "its pooled vector only"}[encoder.read]  # fmt: skip
    if encoder.pooled and encoder.read != "pooled":
        reads += ", and its pooled vector"
    reached = " and ".join(
        {"sequence": "that sequence", "pooled": "the pooled vector"}[r] for r in reaches(encoder, idx)
    )
    return (f"`{encoder.component}` (text encoder {encoder.encoder_index} of the pipeline: {what}), block {idx} "
            f"(`{name}`; blocks count from 0). The pipeline reads {reads}; an edit here reaches "
            f"{reached or 'nothing it reads'}")  # fmt: skip
