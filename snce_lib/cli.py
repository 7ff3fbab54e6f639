"""`snce` subcommands: thin wrappers over the library's functions.

Every known failure becomes one line on stderr (`snce: error: ...`) and exit status 2.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, RuntimeError)


def _add_collect(sub) -> None:
    p = sub.add_parser("collect", help="capture a block's per-token outputs into an activation store")
    p.add_argument("--encoder", default="offline", help="offline | a hub id (CompVis/stable-diffusion-v1-4) | a local folder")
    p.add_argument("--layer", default=None, help="block to capture, e.g. encoder.layers.9 or 9 (default: the family's default)")
    p.add_argument("--prompts", nargs="+", required=True, help="CSV files with a `prompt` column, or text files with one prompt a line")
    p.add_argument("--limit-each", type=int, default=None, help="use at most this many prompts of each file")
    p.add_argument("--out", required=True, help="store folder (rerun the same command to resume)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--keep-padding", default="8", help="padding positions kept per prompt: an integer or 'all'")
    p.add_argument("--shard-prompts", type=int, default=2048)
    p.add_argument("--device", default=None)
    p.add_argument("--fp32", action="store_true", help="no fp16 even on a GPU")
    p.set_defaults(func=cmd_collect)


def cmd_collect(a) -> int:
    from .activations import collect
    from .encoders import load_encoder
    from .prompts import read_many

    keep = a.keep_padding if a.keep_padding == "all" else int(a.keep_padding)
    prompts = read_many(a.prompts, a.limit_each)
    enc = load_encoder(a.encoder, device=a.device, fp16=False if a.fp32 else None)
    enc.resolve_layer(a.layer)  # fail on a bad layer before any work
    t0 = time.perf_counter()
    store = collect(enc, prompts, a.out, layer=a.layer, batch_size=a.batch_size, keep_padding=keep, shard_prompts=a.shard_prompts)
    print(json.dumps({"store": str(a.out), "prompts": store.info.n_prompts, "rows": len(store),
                      "width": store.width, "layer": store.info.layer, "bytes": store.nbytes,
                      "seconds": round(time.perf_counter() - t0, 1)}))
    return 0


def _add_train(sub) -> None:
    from .train import TrainConfig

    d = TrainConfig()
    p = sub.add_parser("train", help="train a TopK SAE on an activation store")
    p.add_argument("--activations", required=True, help="store folder written by `snce collect`")
    p.add_argument("--out", required=True, help="SAE folder (rerun the same command to resume)")
    p.add_argument("--expansion", type=int, default=d.expansion)
    p.add_argument("--latents", type=int, default=None, help="dictionary size (overrides --expansion)")
    p.add_argument("--k", type=int, default=d.k)
    p.add_argument("--auxk-alpha", type=float, default=d.auxk_alpha)
    p.add_argument("--k-aux", type=int, default=None)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--tokens", type=int, default=None, help="training budget in token vectors (default: one pass)")
    p.add_argument("--dead-after-tokens", type=int, default=d.dead_after_tokens)
    p.add_argument("--b-pre-init", choices=("median", "mean"), default=d.b_pre_init)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every)
    p.add_argument("--device", default=None)
    p.set_defaults(func=cmd_train)


def cmd_train(a) -> int:
    from .activations import ActivationStore
    from .train import TrainConfig, train_sae

    store = ActivationStore(a.activations)
    cfg = TrainConfig(expansion=a.expansion, n_latents=a.latents, k=a.k, auxk_alpha=a.auxk_alpha, k_aux=a.k_aux,
                      lr=a.lr, batch_size=a.batch_size, tokens=a.tokens, dead_after_tokens=a.dead_after_tokens,
                      b_pre_init=a.b_pre_init, seed=a.seed, checkpoint_every=a.checkpoint_every, device=a.device)
    res = train_sae(store.load(), cfg, out_dir=a.out, encoder_id=store.info.encoder_id,
                    layer=store.info.layer, layer_index=store.info.layer_index)
    print(json.dumps({k: v for k, v in res.metrics.items() if k != "train_config"}))
    return 0


def _add_select(sub) -> None:
    p = sub.add_parser("select", help="find a concept's neuron(s) by modulated frequency scoring")
    p.add_argument("--sae", required=True, help="SAE folder")
    p.add_argument("--concept", required=True, help="nudity | violence | gun | knife | a pairs CSV")
    p.add_argument("--top-k", type=int, default=1)
    p.add_argument("--method", default="modulated_frequency", choices=("modulated_frequency", "mean_difference", "itd"))
    p.add_argument("--max-deconcept-share", type=float, default=0.0,
                   help="filter tolerance: largest share of deconcept positions a neuron may fire on (paper: 0)")
    p.add_argument("--pooling", choices=("pooled", "per_pair"), default="pooled")
    p.add_argument("--pair-pass-share", type=float, default=0.5)
    p.add_argument("--no-padding", action="store_true", help="score real tokens only")
    p.add_argument("--background", default=None, help="prompt file for each winner's overall firing frequency")
    p.add_argument("--encoder", default=None, help="defaults to the SAE's encoder")
    p.add_argument("--out", required=True, help="neurons.json")
    p.set_defaults(func=cmd_select)


def _sae_and_encoder(sae_dir, encoder=None):
    from .encoders import load_encoder
    from .sae import TopKSAE

    sae = TopKSAE.load(sae_dir).requires_grad_(False)
    enc = load_encoder(encoder or sae.cfg.encoder_id or "offline")
    return sae.to(enc.device), enc


def cmd_select(a) -> int:
    from .prompts import read_prompts
    from .selection import load_concept, select_neurons

    sae, enc = _sae_and_encoder(a.sae, a.encoder)
    bg = read_prompts(a.background) if a.background else None
    sel, _ = select_neurons(enc, sae, load_concept(a.concept), top_k=a.top_k, method=a.method,
                            include_padding=not a.no_padding, max_deconcept_share=a.max_deconcept_share,
                            pooling=a.pooling, pair_pass_share=a.pair_pass_share, background=bg)
    sel.save(a.out)
    print(json.dumps({"neurons": sel.neurons, "scores": sel.scores, **sel.stats}))
    return 0


def _add_inspect(sub) -> None:
    p = sub.add_parser("inspect", help="each prompt's activation of the chosen neuron(s): the neuron as a detector")
    p.add_argument("--sae", required=True)
    p.add_argument("--neurons", required=True, help="neurons.json from `snce select`")
    p.add_argument("--prompts", required=True, nargs="+")
    p.add_argument("--encoder", default=None)
    p.add_argument("--out", required=True, help="acts.json")
    p.set_defaults(func=cmd_inspect)


def cmd_inspect(a) -> int:
    from .features import prompt_codes
    from .io import atomic_write_json
    from .prompts import read_many
    from .selection import Selection

    sae, enc = _sae_and_encoder(a.sae, a.encoder)
    sel = Selection.load(a.neurons, sae)
    prompts = read_many(a.prompts)
    codes = prompt_codes(enc, sae, prompts, progress=True)
    best, where = codes.max_activation(sel.neurons)
    rows = []
    for i, p in enumerate(prompts):
        tid = int(codes.token_ids[i, where[i] - 1])
        rows.append({"prompt": p, "activation": float(best[i]), "position": int(where[i]),
                     "token": enc.token_strings([tid])[0] if best[i] > 0 else None})
    atomic_write_json(a.out, {"neurons": sel.neurons, "concept": sel.concept, "sae_fingerprint": sel.sae_fingerprint,
                              "prompts": rows})
    fired = sum(r["activation"] > 0 for r in rows)
    print(json.dumps({"prompts": len(rows), "fired": fired, "out": a.out}))
    return 0


def _add_generate(sub) -> None:
    p = sub.add_parser("generate", help="generate one image per (prompt, seed), resumable, with an optional eraser")
    p.add_argument("--model", default=None,
                   help="sd14 | a hub id | a local pipeline folder | tiny | toy (default: $SNCE_MODEL, else SD v1.4)")
    p.add_argument("--prompts", required=True, help="a named set (i2p, i2p_nudity, coco, ...) or a CSV")
    p.add_argument("--limit", type=int, default=None, help="first N rows of the set")
    p.add_argument("--sae", default=None)
    p.add_argument("--neurons", default=None, help="neurons.json from `snce select` (needs --sae)")
    p.add_argument("--lam", type=float, default=1.0)
    p.add_argument("--mode", default="B", choices=("A", "B", "tuple", "prompt"))
    p.add_argument("--move-negative", action="store_true")
    p.add_argument("--protocol", default="snce-paper")
    p.add_argument("--steps", type=int, default=None, help="override the protocol's steps")
    p.add_argument("--resolution", type=int, default=None, help="override the protocol's resolution")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--device", default=None)
    p.add_argument("--out", required=True, help="image folder (rerun the same command to resume)")
    p.set_defaults(func=cmd_generate)


def cmd_generate(a) -> int:
    from .erase import Eraser
    from .generate import generate
    from .pipelines import load_pipeline
    from .prompts import load_set
    from .protocols import get_protocol
    from .sae import TopKSAE
    from .selection import Selection

    over = {k: v for k, v in (("steps", a.steps), ("resolution", a.resolution)) if v is not None}
    protocol = get_protocol(a.protocol, **over)
    prompts = load_set(a.prompts, n=a.limit)
    if bool(a.sae) != bool(a.neurons):
        raise ValueError("--sae and --neurons go together")
    a.model = a.model or os.environ.get("SNCE_MODEL") or "sd14"
    if a.model == "toy":
        from .toy.model import load_toy_pipeline

        pipe = load_toy_pipeline(device=a.device)
    else:
        pipe = load_pipeline(a.model, device=a.device)
    eraser = None
    if a.sae:
        sae = TopKSAE.load(a.sae).requires_grad_(False)
        eraser = Eraser.from_selection(Selection.load(a.neurons, sae), sae, a.lam, a.mode, a.move_negative)
    rows = generate(pipe, prompts, protocol, a.out, eraser=eraser, batch_size=a.batch_size, model_id=a.model)
    print(json.dumps({"images": len(rows), "out": a.out, "protocol": protocol.name}))
    return 0


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="NudeNet counts and ASR, CLIP score, FID for a generated folder")
    p.add_argument("--images", required=True)
    p.add_argument("--reference", default=None, help="folder to compute FID against")
    p.add_argument("--protocol", default="snce-paper")
    p.add_argument("--clip", action="store_true", help="compute CLIP score with the protocol's CLIP model (needs the hub once)")
    p.add_argument("--out", required=True, help="results.json")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(a) -> int:
    from .evaluation import evaluate_folder
    from .io import atomic_write_json
    from .metrics import load_clip
    from .protocols import get_protocol

    protocol = get_protocol(a.protocol)
    clip = load_clip(protocol.clip_model) if a.clip else None
    res = evaluate_folder(a.images, protocol, a.reference, clip=clip)
    atomic_write_json(a.out, res)
    print(json.dumps({"images": res["nudenet"]["images"], "total": res["nudenet"]["total"],
                      "asr": res["nudenet"]["asr"], "clip": res["clip_score"], "fid": res["fid"]}))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="snce", description="Single Neuron-based Concept Erasure workbook")
    sub = p.add_subparsers(dest="command", required=True)
    for add in ADDERS:
        add(sub)
    return p


ADDERS = [_add_collect, _add_train, _add_select, _add_inspect, _add_generate, _add_evaluate]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ERRORS as exc:
        print(f"snce: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("snce: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


def _add_workbook(sub) -> None:
    p = sub.add_parser("workbook", help="run the four notebooks top to bottom, headless, and summarise")
    p.add_argument("--profile", default="offline", choices=("offline", "colab", "colab-smoke"))
    p.add_argument("--only", nargs="*", default=None, help="a subset, e.g. 01_train_sae")
    p.add_argument("--notebooks", default=None, help="folder holding the notebooks (default ./notebooks)")
    p.add_argument("--timeout", type=int, default=None,
                   help="seconds a cell may take (default: 1800 offline, 6 h colab: training 400M tokens on a T4 "
                        "takes over an hour)")
    p.set_defaults(func=cmd_workbook)


def cmd_workbook(a) -> int:
    from .runner import run_notebooks

    timeout = a.timeout or (6 * 3600 if a.profile == "colab" else 1800)
    res = run_notebooks(a.profile, a.only, timeout, notebooks=a.notebooks)
    summary = json.loads(Path(res["summary"]).read_text())
    summary.pop("profile", None)
    print(json.dumps(summary, indent=1))
    print(f"executed notebooks: {', '.join(res['executed'])}")
    print(f"summary: {res['summary']}")
    return 0


ADDERS.append(_add_workbook)
