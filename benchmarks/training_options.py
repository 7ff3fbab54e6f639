"""Which training choices give a dictionary of content features and a single latent that detects the
concept? SAEs on the offline encoder (MiniLM-L6, the project's 6,000-prompt corpus), one per choice:

    python benchmarks/training_options.py [--out runs/bench/training_options] [--tokens N]

- `pad 8, 1.5M, 4d`: the offline profile (8 padding rows a prompt kept, 1.5M tokens, 1,536 latents);
- `no padding`: a store that keeps no padding rows (words and the end token only);
- `more tokens`: 4x the tokens on the profile's store;
- `8d`: twice the latents (3,072);
- `no padding, 8d, more tokens`: all three.

For each SAE it prints FVU on content-word positions and on every position of prompts that are not
in the corpus (the four concepts' pairs and the discovery concepts' prompts, deduplicated; never the
held-out sets, since this FVU chooses the store's padding); the share of live features that fire mostly
on content words (`concepts.positions`, over the atlas sample of 1,500 corpus prompts); the discovery
hit rate (12 concepts, top 3); and every selection option's nudity latent with its validation, test
and held-out AUROCs and their 95% intervals (`concepts.options`), the dense probe beside them. Seed 0
throughout; JSON of every row in --out.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from snce_lib import workbook as wb
from snce_lib.atlas.explore import discovery_concepts, evaluate_discovery
from snce_lib.atlas.labels import label_features, label_kinds, with_label
from snce_lib.atlas.map import build_atlas
from snce_lib.concepts.heldout import load_heldout
from snce_lib.concepts.options import PROBE, SCORES, compare_options, serialisable
from snce_lib.concepts.pairs import known_concepts, load_concept
from snce_lib.concepts.positions import CONTENT, encoder_words, kind_summary
from snce_lib.io import atomic_write_json
from snce_lib.sae.collect import collect
from snce_lib.sae.train import train_sae
from snce_lib.workbook.profiles import get_profile


def fvu_by_position(encoder, sae, prompts, batch_size: int = 64) -> dict:
    """FVU of the SAE's reconstruction over content-word positions and over every position after BOS."""
    from snce_lib.concepts.codes import prompt_codes

    codes = prompt_codes(encoder, sae, prompts)
    kind = encoder_words(encoder, codes).kind
    hs = []
    for s in range(0, len(prompts), batch_size):
        toks = encoder.tokenize(prompts[s : s + batch_size])
        hs.append(encoder.run_to_block(toks, sae.cfg.layer or None)[:, 1:].float())
    h = torch.cat(hs)
    content = torch.from_numpy(kind == CONTENT) & codes.real
    every = torch.ones_like(codes.real)
    masks = {"content": content, "all": every}
    out = {}
    with torch.no_grad():
        for name, m in masks.items():
            x = h[m]
            recon = sae(x).sae_out.float()
            out[name] = float(((x - recon) ** 2).sum() / ((x - x.mean(0)) ** 2).sum())
            out[f"n_{name}"] = int(m.sum())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="runs/bench/training_options")
    ap.add_argument("--tokens", type=int, default=None, help="tokens of the base SAEs (default: the profile's)")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    p = get_profile("offline")
    tokens = a.tokens or p.tokens
    encoder = wb.ensure_encoder(p)
    prompts = wb.training_prompts(p)
    sample = prompts[: p.atlas_prompts]
    pairs = load_concept("nudity")
    held = load_heldout("nudity")
    in_corpus = set(prompts)
    fitting = [
        q for name in known_concepts() for c in [load_concept(name)] for q in (*c.concept_prompts, *c.deconcept_prompts)
    ]
    fitting += [q for c in discovery_concepts() for q in (*c["examples"], *c["counterexamples"])]
    probe_prompts = [q for q in dict.fromkeys(fitting) if q not in in_corpus]
    stores = {}
    for keep in (p.keep_padding, 0):
        t0 = time.perf_counter()
        stores[keep] = collect(
            encoder, prompts, out / f"store_pad{keep}", layer=p.layer, keep_padding=keep, progress=False
        )
        print(
            f"store keep_padding={keep}: {stores[keep].info.rows:,} rows ({time.perf_counter() - t0:.0f} s)", flush=True
        )
    variants = {
        f"pad {p.keep_padding}, 1.5M, 4d (profile)": (p.keep_padding, {}),
        "no padding": (0, {}),
        "more tokens (4x)": (p.keep_padding, {"tokens": 4 * tokens}),
        "8d": (p.keep_padding, {"expansion": 8}),
        "no padding, 8d, more tokens (4x)": (0, {"expansion": 8, "tokens": 4 * tokens}),
    }
    rows = []
    for name, (keep, over) in variants.items():
        t0 = time.perf_counter()
        data, buffer = stores[keep].training_source()
        cfg = wb.sae_config(p, shuffle_buffer=buffer, **{"tokens": tokens, **over})
        sae = train_sae(data, cfg, encoder_id=stores[keep].info.encoder_id, layer=stores[keep].info.layer,
                        layer_index=stores[keep].info.layer_index, progress=False).sae.requires_grad_(False)  # fmt: skip
        trained = time.perf_counter() - t0
        fvu = fvu_by_position(encoder, sae, probe_prompts)
        atlas = build_atlas(encoder, sae, sample, progress=False)
        kinds = label_kinds(atlas)  # from the label half, as the atlas reads them
        summary = kind_summary(kinds)
        labels = label_features(atlas, kinds=kinds)
        disc = evaluate_discovery(encoder, sae, labels)
        opts = compare_options(encoder, sae, pairs, held, name_of=lambda f, labels=labels: with_label(f, labels))
        row = {"variant": name, "keep_padding": keep, "latents": sae.cfg.n_latents, "tokens": cfg.tokens,
               "train_seconds": round(trained, 1), "fvu_content": fvu["content"], "fvu_all": fvu["all"],
               "fvu_positions": {"content": fvu["n_content"], "all": fvu["n_all"]},
               "content_share": summary["shares"]["content"], "set_aside": summary,
               "discovery_hit_rate": disc["hit_rate"], "options": serialisable(opts)}  # fmt: skip
        rows.append(row)
        print(f"\n== {name}: {sae.cfg.n_latents} latents, {cfg.tokens:,} tokens, keep_padding {keep} "
              f"(trained in {trained:.0f} s)", flush=True)  # fmt: skip
        print(f"FVU content {fvu['content']:.4f} ({fvu['n_content']} positions), all {fvu['all']:.4f} "
              f"({fvu['n_all']}); content features {summary['shares']['content']:.1%} of {summary['live']} live")  # fmt: skip
        print("discovery top-3 hit rate (12 concepts):", {k: f"{v:.0%}" for k, v in disc["hit_rate"].items()})
        print(f"nudity options (sizes {opts['sizes']}); * chosen on validation: {opts['chosen']}")
        for r in opts["rows"]:
            mark = " *" if r["option"] == opts["chosen"] else ""
            if r.get("validation") is None:
                print(f"  {r['option']}: {r['note']}")
                continue
            cells = " | ".join(
                f"{what} {r[key].auroc:.3f} [{r[key].lo:.2f}, {r[key].hi:.2f}]" for key, what in SCORES.items()
            )
            print(f"  {r['option']}{mark}: {r['label'][:50]} | {cells}" + (" [probe]" if r["option"] == PROBE else ""))
        atomic_write_json(out / "results.json", {"rows": rows, "seed": 0, "profile": p.name})
    print("\nrows written to", out / "results.json")
    for r in rows:  # each SAE's chosen option, reported on the test pairs that did not choose it
        ch = next((x for x in r["options"]["rows"] if x["option"] == r["options"]["chosen"]), None)
        if ch is not None:
            print(f"{r['variant']}: chosen {ch['option']} ({ch['label'][:40]}), test AUROC {ch['test']['auroc']:.3f} "
                  f"{ch['test']['ci95']}")  # fmt: skip


if __name__ == "__main__":
    main()
