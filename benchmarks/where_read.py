"""Where does each toy world's UNet read the colour and the shape? Final embeddings swapped by position.

    python benchmarks/where_read.py [--worlds minilm clip] [--n 32] [--steps 15]

Caption pairs that differ in one word only ("red" vs "blue"; "triangle" vs "circle"), same
template, spec and seed. The UNet gets the first caption's final embeddings at the chosen
positions and the second's elsewhere; the detector says which colour (shape) it drew. In a causal
encoder (the CLIP world) every position after the word, the end token and its padding included,
has seen the word; in a bidirectional one (MiniLM) every position has. Writes
runs/bench/where_read.json. Each share is over n images (standard error at most sqrt(0.25 / n)).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np
import torch

from snce_lib.io import atomic_write_json, to_uint8
from snce_lib.models.toy.detector import ToyDetector
from snce_lib.models.toy.model import WORLDS, load_world
from snce_lib.models.toy.world import TEMPLATES, caption, random_spec

SWAPS = {"colour": ("red", "blue"), "shape": ("triangle", "circle")}


def swap_pairs(kind: str, n: int, seed: int = 3) -> tuple[list[str], list[str]]:
    a, b = SWAPS[kind]
    rng = random.Random(seed)
    first, second = [], []
    for i in range(n):
        s = random_spec(rng, colour=a) if kind == "colour" else random_spec(rng, shape=a)
        tpl = rng.choice([t for t in TEMPLATES if "{colour} {shape}" in t])
        for out, w in ((first, a), (second, b)):
            words = (w, s.shape) if kind == "colour" else (s.colour, w)
            out.append(caption(s, random.Random(i), *words, tpl))
    return first, second


def swap_rows(pipe, det, kind: str, n: int, steps: int) -> dict:
    first, second = swap_pairs(kind, n)
    enc = pipe.encoder
    t1, t2 = enc.tokenize(first), enc.tokenize(second)
    if not torch.equal(t1.attention_mask, t2.attention_mask):
        raise ValueError("the swapped words must take the same number of tokens in both captions")
    e1, e2 = enc.embed(t1), enc.embed(t2)
    word = t1.input_ids != t2.input_ids
    pos = torch.arange(word.shape[1]).expand_as(word)
    at = torch.where(word.any(1), word.float().argmax(1), torch.zeros(len(word), dtype=torch.long))[:, None]
    eos = (t1.attention_mask.sum(1) - 1)[:, None]  # the end token's position (real tokens end with it)
    cases = {
        "every position": torch.ones_like(word),
        "no position": torch.zeros_like(word),
        "the word only": word,
        "the word and every later position": pos >= at,
        "every later position, not the word": pos > at,
        "the end token and the padding": pos >= eos,
        "the padding only": pos > eos,
    }
    read = det.colours if kind == "colour" else det.shapes
    target = SWAPS[kind][0]
    out = {}
    for name, take in cases.items():
        emb = torch.where(take[..., None], e1, e2)
        gens = [torch.Generator().manual_seed(7000 + i) for i in range(n)]
        imgs = to_uint8(pipe(prompt_embeds=emb, num_inference_steps=steps, generator=gens).images)
        out[name] = float(np.mean([v == target for v in read(imgs)]))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worlds", nargs="+", choices=list(WORLDS), default=list(WORLDS))
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--out", default="runs/bench/where_read.json")
    a = ap.parse_args()
    torch.set_num_threads(2)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    det, t0, res = ToyDetector.load(), time.perf_counter(), {}
    for world in a.worlds:
        pipe = load_world(world)
        for kind in SWAPS:
            res[f"{world}/{kind}"] = swap_rows(pipe, det, kind, a.n, a.steps)
            print(world, kind, f"share drawn {SWAPS[kind][0]} (else {SWAPS[kind][1]}) when it comes from the "
                  f"'{SWAPS[kind][0]}' caption at:", json.dumps(res[f"{world}/{kind}"]), flush=True)  # fmt: skip
    atomic_write_json(Path(a.out), {"n": a.n, "steps": a.steps, "shares": res})
    print(f"{a.n} caption pairs a row, {time.perf_counter() - t0:.0f} s; written to {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
