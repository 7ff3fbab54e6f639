"""SAEs that travel: write an snce SAE in SAELens' on-disk format (SAELens' `SAE.load_from_disk` and,
pushed with `hub.push_to_hub(..., format="saelens")`, its `SAE.from_pretrained` open it) or in
EleutherAI sparsify's (its `SparseCoder.load_from_disk` opens it), and read both back.
Safetensors and JSON only. (SAE-Dashboard's runner also needs a TransformerLens model of the encoder,
which a CLIP or MiniLM text encoder is not, so its dashboards are not built from these files here.)

The three TopK SAEs compute the same thing under other names:

| snce            | SAELens (`topk`)          | sparsify                 |
|-----------------|---------------------------|--------------------------|
| W_enc [m, d]    | W_enc [d, m] (transposed) | encoder.weight [m, d]    |
| b_enc [m]       | b_enc                     | encoder.bias             |
| W_dec [m, d]    | W_dec [m, d]              | W_dec [m, d]             |
| b_pre [d]       | b_dec (subtracted first)  | b_dec (subtracted first) |

All three encode TopK(ReLU(W_enc (x - b) + b_enc)) and decode W_dec^T z + b.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from snce_lib.io import atomic_save_safetensors, atomic_write_json, read_json
from snce_lib.sae.model import CheckpointError, SAEConfig, TopKSAE


def to_saelens(sae: TopKSAE, folder: str | os.PathLike, metadata: dict | None = None) -> Path:
    """Write `cfg.json` + `sae_weights.safetensors` as SAELens 6 saves a `topk` SAE."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    c = sae.cfg
    meta = {
        "model_name": c.encoder_id,
        "hook_name": c.layer,
        "snce": {"layer_index": c.layer_index},
        **(metadata or {}),
    }
    atomic_save_safetensors(
        folder / "sae_weights.safetensors",
        {
            "W_enc": sae.W_enc.detach().T.contiguous(),
            "b_enc": sae.b_enc.detach(),
            "W_dec": sae.W_dec.detach(),
            "b_dec": sae.b_pre.detach(),
        },  # fmt: skip
    )
    atomic_write_json(
        folder / "cfg.json",
        {
            "architecture": "topk",
            "d_in": c.d_in,
            "d_sae": c.n_latents,
            "k": c.k,
            "dtype": "float32",
            "device": "cpu",
            "apply_b_dec_to_input": True,
            "normalize_activations": "none",
            "reshape_activations": "none",
            "rescale_acts_by_decoder_norm": False,
            "metadata": meta,
        },  # fmt: skip
    )
    return folder


def from_saelens(folder: str | os.PathLike) -> TopKSAE:
    """An SAELens `topk` SAE folder as an snce TopKSAE (the variants that compute something else are refused)."""
    folder = Path(folder)
    cfg = read_json(folder / "cfg.json", "SAELens config")
    wants = {"architecture": "topk", "apply_b_dec_to_input": True, "normalize_activations": "none",
             "rescale_acts_by_decoder_norm": False}  # fmt: skip
    other = {k: cfg.get(k, v) for k, v in wants.items() if cfg.get(k, v) != v}
    if other:
        raise CheckpointError(f"{folder} is an SAELens SAE this library cannot compute the same way ({other})")
    t = _tensors(folder / "sae_weights.safetensors", ("W_enc", "b_enc", "W_dec", "b_dec"))
    meta = cfg.get("metadata") or {}
    layer_index = (meta.get("snce") or {}).get("layer_index", -1)
    sc = SAEConfig(int(cfg["d_in"]), int(cfg["d_sae"]), int(cfg["k"]), str(meta.get("model_name") or ""),
                   str(meta.get("hook_name") or ""), int(layer_index))  # fmt: skip
    return TopKSAE.from_tensors(
        sc, {"W_enc": t["W_enc"].T, "b_enc": t["b_enc"], "W_dec": t["W_dec"], "b_pre": t["b_dec"]}
    )


def from_sparsify(folder: str | os.PathLike) -> TopKSAE:
    """A sparsify SparseCoder checkpoint (`cfg.json` + `sae.safetensors`) as an snce TopKSAE."""
    folder = Path(folder)
    cfg = read_json(folder / "cfg.json", "sparsify config")
    if cfg.get("activation", "topk") != "topk" or cfg.get("transcode") or cfg.get("skip_connection"):
        raise CheckpointError(f"{folder} is a sparsify coder other than a plain TopK SAE ({cfg})")
    t = _tensors(folder / "sae.safetensors", ("encoder.weight", "encoder.bias", "W_dec", "b_dec"))
    m, d = t["encoder.weight"].shape
    ours = cfg.get("snce") or {}  # written by to_sparsify; a checkpoint sparsify trained has none
    sc = SAEConfig(int(d), int(m), int(cfg["k"]), str(ours.get("encoder_id") or ""), str(ours.get("layer") or ""),
                   int(ours.get("layer_index", -1)))  # fmt: skip
    return TopKSAE.from_tensors(sc, {"W_enc": t["encoder.weight"], "b_enc": t["encoder.bias"], "W_dec": t["W_dec"],
                                     "b_pre": t["b_dec"]})  # fmt: skip


def to_sparsify(sae: TopKSAE, folder: str | os.PathLike) -> Path:
    """Write `cfg.json` + `sae.safetensors` as sparsify 1.x saves a plain TopK SparseCoder. The cfg's
    "snce" entry (sparsify ignores keys it does not know) keeps the encoder and block for `from_sparsify`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    c = sae.cfg
    atomic_save_safetensors(
        folder / "sae.safetensors",
        {
            "encoder.weight": sae.W_enc.detach().contiguous(),
            "encoder.bias": sae.b_enc.detach(),
            "W_dec": sae.W_dec.detach().contiguous(),
            "b_dec": sae.b_pre.detach(),
        },  # fmt: skip
    )
    atomic_write_json(
        folder / "cfg.json",
        {
            "activation": "topk",
            "expansion_factor": max(1, c.n_latents // c.d_in),
            "normalize_decoder": True,
            "num_latents": c.n_latents,
            "k": c.k,
            "multi_topk": False,
            "skip_connection": False,
            "transcode": False,
            "d_in": c.d_in,
            "snce": {"encoder_id": c.encoder_id, "layer": c.layer, "layer_index": c.layer_index},
        },  # fmt: skip
    )
    return folder


def _tensors(path: Path, names: tuple[str, ...]) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        t = load_file(str(path))
    except (OSError, SafetensorError) as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from None
    missing = [n for n in names if n not in t]
    if missing:
        raise CheckpointError(f"{path} lacks {', '.join(missing)}")
    return {n: t[n].float() for n in names}
