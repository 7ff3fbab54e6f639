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

ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, RuntimeError)


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


def finite_float(text: str) -> float:
    """argparse type: a finite number (no nan, no inf)."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _add_collect(sub) -> None:
    p = sub.add_parser("collect", help="capture a block's per-token outputs into an activation store")
    p.add_argument("--encoder", default="offline", help="offline | a hub id (CompVis/stable-diffusion-v1-4) | a local folder")
    p.add_argument("--layer", default=None, help="block to capture, e.g. encoder.layers.9 or 9 (default: the family's default)")
    p.add_argument("--prompts", nargs="+", required=True, help="CSV files with a `prompt` column, or text files with one prompt a line")
    p.add_argument("--limit-each", type=positive_int, default=None, help="use at most this many prompts of each file")
    p.add_argument("--out", required=True, help="store folder (rerun the same command to resume)")
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--keep-padding", default="8", help="padding positions kept per prompt: an integer or 'all'")
    p.add_argument("--shard-prompts", type=positive_int, default=2048)
    p.add_argument("--device", default=None)
    p.add_argument("--fp32", action="store_true", help="no fp16 even on a GPU")
    p.set_defaults(func=cmd_collect)


def cmd_collect(a) -> int:
    from .activations import collect
    from .encoders import load_encoder
    from .prompts import read_many

    from .io import check_output_dir

    check_output_dir(a.out)
    if a.keep_padding != "all" and not a.keep_padding.isdigit():
        raise ValueError(f"--keep-padding must be a whole number or 'all', got {a.keep_padding!r}")
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
    p.add_argument("--expansion", type=positive_int, default=d.expansion)
    p.add_argument("--latents", type=positive_int, default=None, help="dictionary size (overrides --expansion)")
    p.add_argument("--k", type=positive_int, default=d.k)
    p.add_argument("--auxk-alpha", type=finite_float, default=d.auxk_alpha)
    p.add_argument("--k-aux", type=positive_int, default=None)
    p.add_argument("--lr", type=finite_float, default=d.lr)
    p.add_argument("--batch-size", type=positive_int, default=d.batch_size)
    p.add_argument("--tokens", type=positive_int, default=None, help="training budget in token vectors (default: one pass)")
    p.add_argument("--dead-after-tokens", type=positive_int, default=d.dead_after_tokens)
    p.add_argument("--b-pre-init", choices=("median", "mean"), default=d.b_pre_init)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--checkpoint-every", type=positive_int, default=d.checkpoint_every)
    p.add_argument("--device", default=None)
    p.set_defaults(func=cmd_train)


def cmd_train(a) -> int:
    from .activations import ActivationStore
    from .train import TrainConfig, train_sae

    from .io import check_output_dir

    check_output_dir(a.out)
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
    p.add_argument("--top-k", type=positive_int, default=1)
    p.add_argument("--method", default="modulated_frequency", choices=("modulated_frequency", "mean_difference", "itd"))
    p.add_argument("--max-deconcept-share", type=finite_float, default=0.0,
                   help="filter tolerance: largest share of deconcept positions a neuron may fire on (paper: 0)")
    p.add_argument("--pooling", choices=("pooled", "per_pair"), default="pooled")
    p.add_argument("--pair-pass-share", type=finite_float, default=0.5)
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

    from .io import check_output_file

    check_output_file(a.out)
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

    from .io import check_output_file

    check_output_file(a.out)
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
    p.add_argument("--limit", type=positive_int, default=None, help="first N rows of the set")
    p.add_argument("--sae", default=None)
    p.add_argument("--neurons", default=None, help="neurons.json from `snce select` (needs --sae)")
    p.add_argument("--lam", type=finite_float, default=1.0, help="erasure strength (a finite number >= 0)")
    p.add_argument("--allow-negative-lam", action="store_true", help="allow lambda < 0, which adds the concept")
    p.add_argument("--mode", default="B", choices=("A", "B", "tuple", "prompt"))
    p.add_argument("--move-negative", action="store_true")
    p.add_argument("--protocol", default="snce-paper")
    p.add_argument("--steps", type=positive_int, default=None, help="override the protocol's steps")
    p.add_argument("--resolution", type=positive_int, default=None, help="override the protocol's resolution")
    p.add_argument("--batch-size", type=positive_int, default=4)
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

    from .io import check_output_dir

    check_output_dir(a.out)
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
        eraser = Eraser.from_selection(Selection.load(a.neurons, sae), sae, a.lam, a.mode, a.move_negative,
                                       a.allow_negative_lam)
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

    from .generate import planned_images
    from .io import check_output_file

    check_output_file(a.out)
    if a.reference is not None and not Path(a.reference).is_dir():
        raise FileNotFoundError(f"--reference {a.reference} is not a folder of generated images")
    protocol = get_protocol(a.protocol)
    clip = load_clip(protocol.clip_model) if a.clip else None
    res = evaluate_folder(a.images, protocol, a.reference, clip=clip)
    planned = planned_images(a.images)
    res["planned_images"] = planned
    res["complete"] = planned is None or res["nudenet"]["images"] >= planned
    atomic_write_json(a.out, res)
    if not res["complete"]:
        print(f"snce: warning: {a.images} holds {res['nudenet']['images']} of the {planned} images its run planned; "
              "the numbers cover only those (rerun generate to finish)", file=sys.stderr)
    print(json.dumps({"images": res["nudenet"]["images"], "planned": planned, "total": res["nudenet"]["total"],
                      "asr": res["nudenet"]["asr"], "clip": res["clip_score"], "fid": res["fid"]}))
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (its default prints the whole usage first)."""

    def error(self, message: str):
        print(f"snce: error: {self.prog}: {' '.join(message.split())} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="snce", description="Single Neuron-based Concept Erasure workbook")
    sub = p.add_subparsers(dest="command", required=True)
    for add in ADDERS:
        add(sub)
    return p


ADDERS = [_add_collect, _add_train, _add_select, _add_inspect, _add_generate, _add_evaluate]


def main(argv: list[str] | None = None) -> int:
    import warnings

    args = build_parser().parse_args(argv)
    # Library warnings (a truncated prompt, say) as one line each, like the errors; restored after.
    saved = warnings.formatwarning
    warnings.formatwarning = lambda message, *_a, **_k: f"snce: warning: {' '.join(str(message).split())}\n"
    try:
        return _run(args)
    finally:
        warnings.formatwarning = saved


def _run(args) -> int:
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("snce: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except ERRORS as exc:
        return _fail(_message(exc))
    except Exception as exc:  # the last net: one line, never a traceback (SNCE_DEBUG=1 shows it)
        if os.environ.get("SNCE_DEBUG"):
            raise
        return _fail(f"unexpected {type(exc).__name__}: {_message(exc)} (set SNCE_DEBUG=1 to see where)")


def _message(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in str(exc.strerror or ""):
        text = f"{exc.strerror or exc}: {exc.filename}"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())  # one line, whatever the exception's text holds


def _fail(message: str) -> int:
    print(f"snce: error: {message}", file=sys.stderr)
    return 2


def _add_workbook(sub) -> None:
    p = sub.add_parser("workbook", help="run the four notebooks top to bottom, headless, and summarise")
    p.add_argument("--profile", default="offline", choices=("offline", "colab", "colab-smoke"))
    p.add_argument("--only", nargs="*", default=None, help="a subset, e.g. 01_train_sae")
    p.add_argument("--notebooks", default=None, help="folder holding the notebooks (default ./notebooks)")
    p.add_argument("--timeout", type=positive_int, default=None,
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
