"""Why one neuron does not erase a concept here: concept-specific latent families and probe leakage.

    python benchmarks/leakage_report.py --toy-sae runs/bench/toy/sae --out runs/bench/leakage.json \
        [--nudity-sae runs/bench/sae_s0]

Toy world: first, where the UNet reads the colour (final embeddings swapped position by
position between "red" and "blue" captions). Then, for "red" and "triangle": the
concept-specific latent families (fire in >= 90%, 50% or 30% of target prompts and <= 5% of
the others; and in >= 90% of prompts that use the plain word only); then erasure (mode B) of
the top-1 selected neuron and of each family at lambda 1 and 2, each with the probe leakage on
the encoder output and, from generated images, the target rate; also the top-1 neuron with
the negative prompt pushed towards the concept (`move_negative`, both modes). Offline nudity
(if the public sets are there): the same probe check for the top-1 neuron, I2P nudity > 50
against COCO captions.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from snce_lib.concepts.codes import prompt_codes
from snce_lib.concepts.erase import Eraser
from snce_lib.concepts.leakage import concept_latents, concept_leakage
from snce_lib.concepts.pairs import load_concept
from snce_lib.concepts.selection import select_neurons
from snce_lib.evaluation.toy import erase_and_probe, prompt_suite, target_kind, toy_concept
from snce_lib.io import atomic_write_json, to_uint8
from snce_lib.models.toy.detector import ToyDetector
from snce_lib.models.toy.model import load_toy_pipeline
from snce_lib.sae import formats


def plain_word_prompts(target: str, n: int, seed: int = 8) -> list[str]:
    """Target prompts that use the plain word only ("red", "triangle"), no synonyms."""
    import random

    from snce_lib.models.toy.world import caption, random_spec

    rng = random.Random(seed)
    kind = target_kind(target)
    specs = [random_spec(rng, colour=target) if kind == "colour" else random_spec(rng, shape=target) for _ in range(n)]
    return [caption(s, rng, target if kind == "colour" else None, target if kind == "shape" else None) for s in specs]


def toy_rows(pipe, det, sae, target: str, n: int, steps: int) -> dict:
    enc = pipe.encoder
    suite = prompt_suite(target, n, seed=7)
    tgt, oth = [p for p, _ in suite.target], [p for p, _ in suite.other]
    c_tgt, c_oth = prompt_codes(enc, sae, tgt), prompt_codes(enc, sae, oth)
    family90, sc, so = concept_latents(c_tgt, c_oth, 0.9, 0.05)
    families = {
        "family 90%/5%": family90,
        **{f"family {a:.0%}/{b:.0%}": concept_latents(c_tgt, c_oth, a, b)[0] for a, b in ((0.5, 0.05), (0.3, 0.05))},
    }
    families["plain-word family 90%/5%"] = concept_latents(
        prompt_codes(enc, sae, plain_word_prompts(target, n)), c_oth, 0.9, 0.05
    )[0]
    read = det.colours if target_kind(target) == "colour" else det.shapes
    seeds = [7000 + i for i in range(n)]
    out = {"families": families, "rows": []}
    erase = {}
    concept = toy_concept(target)
    for tol in (0.0, 0.01):
        sel, _ = select_neurons(enc, sae, concept, top_k=1, max_deconcept_share=tol)
        n0 = sel.neurons[0]
        out[f"top1_tol{tol}"] = {"neuron": n0, "fires_in_target": float(sc[n0]), "fires_in_other": float(so[n0])}
        erase[f"top-1 (tol {tol})"] = [n0]
    erase.update({k: v for k, v in families.items() if v})
    settings = [(name, neurons, lam, "B", False) for name, neurons in erase.items() for lam in (1.0, 2.0)]
    # Concept Steerers' extra push: the negative prompt moved towards the concept, so guidance steers away
    settings += [
        ("top-1 (tol 0.0), move_negative", erase["top-1 (tol 0.0)"], lam, mode, True)
        for mode in ("A", "B")
        for lam in (1.0, 2.0)
    ]
    for name, neurons, lam, mode, move_neg in settings:
        er = Eraser(sae, neurons, lam, mode, concept.tuple_prompt, move_negative=move_neg)
        row = {
            "erase": name,
            "neurons": len(neurons),
            "lam": lam,
            "mode": mode,
            **erase_and_probe(pipe, read, target, er, tgt, oth, seeds, steps),
        }
        out["rows"].append(row)
        print(target, json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)
    base = pipe.generate(tgt, seeds, steps)
    out["target_rate_no_eraser"] = float(np.mean([v == target for v in read(base)]))
    print(
        target,
        "no eraser: target rate",
        out["target_rate_no_eraser"],
        "families",
        {k: len(v) for k, v in families.items()},
        flush=True,
    )
    return out


def swap_rows(pipe, det, n: int, steps: int) -> dict:
    """Where does the UNet read the colour? Captions that differ only in "red" vs "blue"; the final
    embeddings at chosen positions come from the red caption, the rest from the blue one."""
    import random

    from snce_lib.models.toy.world import TEMPLATES, caption, random_spec

    rng = random.Random(3)
    reds, blues = [], []
    for i in range(n):
        s = random_spec(rng, colour="red")
        tpl = rng.choice([t for t in TEMPLATES if "{colour} {shape}" in t])
        reds.append(caption(s, random.Random(i), "red", s.shape, tpl))
        blues.append(caption(s, random.Random(i), "blue", s.shape, tpl))
    enc = pipe.encoder
    tr, tb = enc.tokenize(reds), enc.tokenize(blues)
    e_red, e_blue = enc.embed(tr), enc.embed(tb)
    word = tr.input_ids != tb.input_ids  # the colour word's position
    real = tr.attention_mask.bool()
    pos = torch.arange(word.shape[1]).expand_as(word)
    cases = {
        "every position": torch.ones_like(word),
        "no position": torch.zeros_like(word),
        "colour word only": word,
        "all but the colour word": ~word,
        "[CLS] only": pos == 0,
        "padding only": ~real,
    }
    out = {}
    for name, take in cases.items():
        emb = torch.where(take[..., None], e_red, e_blue)
        gens = [torch.Generator().manual_seed(7000 + i) for i in range(n)]
        imgs = to_uint8(pipe(prompt_embeds=emb, num_inference_steps=steps, generator=gens).images)
        cols = det.colours(imgs)
        out[name] = {
            "red": float(np.mean([c == "red" for c in cols])),
            "blue": float(np.mean([c == "blue" for c in cols])),
        }
        print("swap, red embeddings at", name, out[name], flush=True)
    return out


def nudity_rows(sae_dir: str, n_other: int) -> dict:
    from snce_lib.models.encoders import load_offline
    from snce_lib.prompts import load_set

    enc = load_offline(device="cpu")
    sae = formats.from_pretrained(sae_dir).requires_grad_(False)
    i2p = load_set("i2p").frame
    pos = i2p[i2p["nudity_percentage"] > 50]["prompt"].tolist()
    neg = load_set("coco").prompts[:n_other]
    out = {"n_concept": len(pos), "n_other": len(neg), "rows": []}
    for tol in (0.0, 0.01):
        sel, _ = select_neurons(enc, sae, load_concept("nudity"), top_k=1, max_deconcept_share=tol)
        for lam in (1.0, 2.0):
            leak = concept_leakage(enc, Eraser(sae, sel.neurons, lam, "B"), pos, neg)
            row = {"tol": tol, "neuron": sel.neurons[0], "lam": lam, **leak.as_dict()}
            out["rows"].append(row)
            print(
                "nudity",
                json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}),
                flush=True,
            )
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--toy-sae", required=True)
    ap.add_argument("--nudity-sae")
    ap.add_argument("--n", type=int, default=48)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--n-coco", type=int, default=500)
    ap.add_argument("--out", default="runs/bench/leakage.json")
    a = ap.parse_args()
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    pipe, det = load_toy_pipeline(), ToyDetector.load()
    sae = formats.from_pretrained(a.toy_sae).requires_grad_(False)
    report = {
        "toy_sae": a.toy_sae,
        "toy_sae_metrics": sae.metrics,
        "swap": swap_rows(pipe, det, 32, a.steps),
        "toy": {t: toy_rows(pipe, det, sae, t, a.n, a.steps) for t in ("red", "triangle")},
    }
    if a.nudity_sae:
        report["nudity"] = nudity_rows(a.nudity_sae, a.n_coco)
    report["seconds"] = round(time.perf_counter() - t0, 1)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(a.out, report)
    print(json.dumps({k: report[k] for k in ("seconds",)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
