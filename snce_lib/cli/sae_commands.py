"""`snce` subcommands that build the dictionary: collect, train, select, inspect.

Argument types live in `snce_lib.cli.args`; the parser and the error funnel in `snce_lib.cli`.
"""

from __future__ import annotations

import json
import time

from snce_lib.cli.args import add_sae_arguments, finite_float, load_sae, positive_int


def _add_collect(sub) -> None:
    p = sub.add_parser("collect", help="capture a block's per-token outputs into an activation store")
    p.add_argument(
        "--encoder", default="offline", help="offline | a hub id (CompVis/stable-diffusion-v1-4) | a local folder"
    )
    p.add_argument(
        "--layer", default=None, help="block to capture, e.g. encoder.layers.9 or 9 (default: the family's default)"
    )
    p.add_argument("--encoder-index", type=int, default=None,
                   help="which of the pipeline's text encoders (SDXL, FLUX.1: 0 or 1; default: the family's site)")  # fmt: skip
    p.add_argument(
        "--prompts",
        nargs="+",
        required=True,
        help="CSV files with a `prompt` column, or text files with one prompt a line",
    )
    p.add_argument("--limit-each", type=positive_int, default=None, help="use at most this many prompts of each file")
    p.add_argument("--out", required=True, help="store folder (rerun the same command to resume)")
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--keep-padding", default="8", help="padding positions kept per prompt: an integer or 'all'")
    p.add_argument("--shard-prompts", type=positive_int, default=2048)
    p.add_argument("--device", default=None)
    p.add_argument("--fp32", action="store_true", help="no fp16 even on a GPU")
    p.set_defaults(func=cmd_collect)


def cmd_collect(a) -> int:
    from snce_lib.io import check_output_dir
    from snce_lib.models.encoders import load_encoder
    from snce_lib.prompts import read_many
    from snce_lib.sae.collect import collect

    check_output_dir(a.out)
    if a.keep_padding != "all" and not a.keep_padding.isdigit():
        raise ValueError(f"--keep-padding must be a whole number or 'all', got {a.keep_padding!r}")
    keep = a.keep_padding if a.keep_padding == "all" else int(a.keep_padding)
    prompts = read_many(a.prompts, a.limit_each)
    enc = load_encoder(a.encoder, device=a.device, fp16=False if a.fp32 else None, encoder_index=a.encoder_index)
    enc.resolve_layer(a.layer)  # fail on a bad layer before any work
    t0 = time.perf_counter()
    store = collect(
        enc, prompts, a.out, layer=a.layer, batch_size=a.batch_size, keep_padding=keep, shard_prompts=a.shard_prompts
    )
    print(
        json.dumps(
            {
                "store": str(a.out),
                "prompts": store.info.n_prompts,
                "rows": len(store),
                "width": store.width,
                "layer": store.info.layer,
                "bytes": store.nbytes,
                "seconds": round(time.perf_counter() - t0, 1),
            }
        )
    )
    return 0


def _add_train(sub) -> None:
    from snce_lib.sae.train import TrainConfig

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
    p.add_argument(
        "--tokens", type=positive_int, default=None, help="training budget in token vectors (default: one pass)"
    )
    p.add_argument("--dead-after-tokens", type=positive_int, default=d.dead_after_tokens)
    p.add_argument("--b-pre-init", choices=("median", "mean"), default=d.b_pre_init)
    p.add_argument("--encoder-init", choices=("fit", "unit"), default=d.encoder_init,
                   help="encoder start: the decoder's transpose at the best-fitting scale, or with unit rows")  # fmt: skip
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--shuffle-buffer", type=positive_int, default=None,
                   help="rows in the shuffle buffer when streaming from the store's memory map (default: load the store "
                   "whole when it takes at most a quarter of this machine's memory, else stream with such a buffer)")  # fmt: skip
    p.add_argument("--checkpoint-every", type=positive_int, default=d.checkpoint_every)
    p.add_argument("--device", default=None)
    p.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default=d.precision,
                   help="autocast: auto = bf16 on GPUs of compute capability 8.0+, fp16 with loss scaling below "
                   "(a T4), bf16 on CPUs with AMX, else fp32")  # fmt: skip
    p.add_argument("--path", choices=("auto", "sparse", "dense"), default=d.path,
                   help="backward over the k active latents only (sparse) or the dense reference; auto: sparse on a CPU")  # fmt: skip
    p.set_defaults(func=cmd_train)


def cmd_train(a) -> int:
    from snce_lib.io import check_output_dir
    from snce_lib.sae.store import ActivationStore
    from snce_lib.sae.train import TrainConfig, train_sae

    check_output_dir(a.out)
    store = ActivationStore(a.activations)
    # every TrainConfig field has its flag (--latents for n_latents), so the config is read off the arguments
    names = {f: ("latents" if f == "n_latents" else f) for f in TrainConfig.__dataclass_fields__}
    cfg = TrainConfig(**{f: getattr(a, arg) for f, arg in names.items() if hasattr(a, arg)})
    data, cfg.shuffle_buffer = store.training_source(cfg.shuffle_buffer)
    res = train_sae(
        data,
        cfg,
        out_dir=a.out,
        encoder_id=store.info.encoder_id,
        layer=store.info.layer,
        layer_index=store.info.layer_index,
        encoder_index=store.info.encoder_index,
        data_info=store.describe(),
        groups=store.meta()["prompt_id"],  # hold out whole prompts, not rows
    )
    print(json.dumps({k: v for k, v in res.metrics.items() if k != "train_config"}))
    return 0


def _add_select(sub) -> None:
    p = sub.add_parser("select", help="find a concept's neuron(s) by modulated frequency scoring")
    add_sae_arguments(p)
    p.add_argument("--concept", required=True, help="nudity | violence | gun | knife | a pairs CSV")
    p.add_argument("--top-k", type=positive_int, default=1)
    p.add_argument(
        "--method",
        default="modulated_frequency",
        choices=("modulated_frequency", "mean_difference", "max_contrast", "itd", "cover"),
    )
    p.add_argument(
        "--max-deconcept-share",
        type=finite_float,
        default=0.0,
        help="filter tolerance: largest share of deconcept positions a neuron may fire on (paper: 0)",
    )
    p.add_argument(
        "--fallback",
        action="store_true",
        help="when fewer than --top-k neurons pass the strict filter, try the tolerances 1%%, 5%%, 25%% in turn "
        "(modulated_frequency only; the file records which one chose)",
    )
    p.add_argument("--pooling", choices=("pooled", "per_pair"), default="pooled",
                   help="per_pair: score each pair on its own, the filter must hold in every pair")  # fmt: skip
    p.add_argument("--min-coverage", type=finite_float, default=0.0,
                   help="share of concept prompts a neuron must fire in (0: at least once, the paper)")  # fmt: skip
    p.add_argument("--positions", choices=("all", "real", "content"), default="all",
                   help="positions counted: every one after BOS (the paper), words and end token, or content words")  # fmt: skip
    p.add_argument("--no-padding", action="store_true", help="the same as --positions real")
    p.add_argument("--top-features", type=positive_int, default=None,
                   help="itd only: how many of the words' and the retain prompts' top features to contrast (default 32)")  # fmt: skip
    p.add_argument("--background", default=None, help="prompt file for each winner's overall firing frequency")
    p.add_argument("--encoder", default=None, help="defaults to the SAE's encoder")
    p.add_argument("--out", required=True, help="neurons.json")
    p.set_defaults(func=cmd_select)


def _sae_and_encoder(a):
    from snce_lib.models.encoders import load_encoder

    sae = load_sae(a)
    enc = load_encoder(a.encoder or sae.cfg.encoder_id or "offline", encoder_index=sae.cfg.encoder_index)
    return sae.to(enc.device), enc


def cmd_select(a) -> int:
    from snce_lib.concepts.pairs import SelectionError, load_concept
    from snce_lib.concepts.selection import select_neurons, select_with_fallback
    from snce_lib.io import check_output_file
    from snce_lib.prompts import read_prompts

    check_output_file(a.out)
    frequency = a.method == "modulated_frequency"
    if not frequency and (a.fallback or a.pooling != "pooled" or a.min_coverage):
        raise SelectionError(
            f"--fallback, --pooling and --min-coverage are modulated_frequency's options, not {a.method}'s"
        )
    if a.method not in ("modulated_frequency", "cover") and a.max_deconcept_share:
        raise SelectionError(f"--max-deconcept-share is an option of modulated_frequency and cover, not {a.method}'s")
    if a.top_features is not None and a.method != "itd":
        raise SelectionError("--top-features is the itd method's option")
    positions = "real" if a.no_padding and a.positions == "all" else a.positions
    if a.method == "itd" and positions != "all":
        raise SelectionError("--method itd reads the word tuple's own tokens: it takes no --positions or --no-padding")
    sae, enc = _sae_and_encoder(a)
    bg = read_prompts(a.background) if a.background else None
    concept = load_concept(a.concept)
    options = {"top_features": a.top_features or 32} if a.method == "itd" else {"positions": positions}
    if frequency:
        options.update(pooling=a.pooling, min_coverage=a.min_coverage)
    if a.fallback:
        sel, _ = select_with_fallback(enc, sae, concept, a.top_k, background=bg, **options)
    else:
        if a.method in ("modulated_frequency", "cover"):
            options["max_deconcept_share"] = a.max_deconcept_share
        sel, _ = select_neurons(enc, sae, concept, a.top_k, a.method, bg, **options)
    sel.save(a.out)
    print(json.dumps({"neurons": sel.neurons, "asked_k": sel.asked_k, "scores": sel.scores,
                      "max_deconcept_share": sel.options.get("max_deconcept_share"), **sel.stats}))  # fmt: skip
    return 0


def _add_inspect(sub) -> None:
    p = sub.add_parser("inspect", help="each prompt's activation of the chosen neuron(s): the neuron as a detector")
    add_sae_arguments(p)
    p.add_argument("--neurons", required=True, help="neurons.json from `snce select`")
    p.add_argument("--prompts", required=True, nargs="+")
    p.add_argument("--encoder", default=None)
    p.add_argument("--out", required=True, help="acts.json")
    p.set_defaults(func=cmd_inspect)


def cmd_inspect(a) -> int:
    from snce_lib.concepts.codes import prompt_codes
    from snce_lib.concepts.selection import Selection
    from snce_lib.io import atomic_write_json, check_output_file
    from snce_lib.prompts import read_many

    check_output_file(a.out)
    sae, enc = _sae_and_encoder(a)
    sel = Selection.load(a.neurons, sae)
    prompts = read_many(a.prompts)
    codes = prompt_codes(enc, sae, prompts, progress=True)
    best, where = codes.max_activation(sel.neurons)
    rows = []
    for i, p in enumerate(prompts):
        tid = int(codes.token_ids[i, where[i] - 1])
        rows.append(
            {
                "prompt": p,
                "activation": float(best[i]),
                "position": int(where[i]),
                "token": enc.token_strings([tid])[0] if best[i] > 0 else None,
            }
        )
    atomic_write_json(
        a.out, {"neurons": sel.neurons, "concept": sel.concept, "sae_fingerprint": sel.sae_fingerprint, "prompts": rows}
    )
    fired = sum(r["activation"] > 0 for r in rows)
    print(json.dumps({"prompts": len(rows), "fired": fired, "out": a.out}))
    return 0


def _add_atlas(sub) -> None:
    p = sub.add_parser("atlas", help="write a self-contained HTML atlas of an SAE (map, search, feature cards)")
    add_sae_arguments(p)
    p.add_argument("--encoder", default=None, help="the encoder the SAE reads (default: the one it was trained on)")
    p.add_argument("--prompts", nargs="*", default=None, help="prompt files to sample (default: the project corpus)")
    p.add_argument("--limit", type=positive_int, default=1500, help="prompts in the sample")
    p.add_argument("--concept", default="nudity", help="concept whose score (eq. 5) colours the map")
    p.add_argument("--out", required=True, help="atlas.html")
    p.set_defaults(func=cmd_atlas)


def cmd_atlas(a) -> int:
    from snce_lib.atlas.explore import explore
    from snce_lib.atlas.html import write_atlas
    from snce_lib.io import check_output_file
    from snce_lib.prompts import read_many, read_prompts
    from snce_lib.resources import data_path

    check_output_file(a.out)
    sae, enc = _sae_and_encoder(a)
    prompts = read_many(a.prompts) if a.prompts else read_prompts(data_path("corpus.csv"))
    ex = explore(enc, sae, prompts[: a.limit], a.concept, progress=False)
    write_atlas(ex.page, a.out)
    names = [ex.layout.names[c] for c in sorted(ex.layout.names)]
    print(json.dumps({"out": a.out, "map": ex.layout.name, "silhouette": ex.map_scores, "clusters": names}))
    return 0


def _add_export(sub) -> None:
    p = sub.add_parser("export", help="write an SAE in another library's layout (saelens, sparsify) or snce's")
    add_sae_arguments(p)
    p.add_argument("--format", required=True, choices=("snce", "saelens", "sparsify"))
    p.add_argument("--out", required=True, help="a new folder")
    p.set_defaults(func=cmd_export)


def cmd_export(a) -> int:
    import os
    import tempfile
    from pathlib import Path

    from snce_lib.io import check_output_dir
    from snce_lib.sae import formats

    out = check_output_dir(a.out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"--out {out} is not empty; give a new folder (an export never mixes two layouts)")
    sae = load_sae(a)
    write = {"snce": formats.save, "saelens": formats.to_saelens, "sparsify": formats.to_sparsify}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))  # whole, then renamed into place
    write[a.format](sae, tmp)
    if out.exists():
        out.rmdir()
    os.replace(tmp, out)
    folder = out
    print(json.dumps({"out": str(folder), "format": a.format, "latents": sae.cfg.n_latents, "k": sae.cfg.k}))
    return 0


ADDERS = [_add_collect, _add_train, _add_select, _add_inspect, _add_atlas, _add_export]
