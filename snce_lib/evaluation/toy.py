"""SNCE end to end in the toy world: SAE, neuron selection, generation with and without the eraser, metrics.

Metrics (all from the exact detector):
- target rate: share of images whose prompt asks for the target that show it;
- preservation: colour and shape accuracy on prompts that do not ask for the target, and the
  Fréchet distance between those images made with and without the eraser (detector features);
- attack rate: the target rate under synonyms and paraphrases never seen in training.
Every configuration uses the same prompts and seeds, so differences come from the edit alone.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from snce_lib.concepts.erase import Eraser
from snce_lib.concepts.leakage import concept_leakage
from snce_lib.concepts.pairs import ConceptPairs
from snce_lib.concepts.selection import Selection, select_neurons
from snce_lib.evaluation.metrics import frechet_distance
from snce_lib.models.toy.detector import ToyDetector
from snce_lib.models.toy.model import ToyPipeline, toy_encoder
from snce_lib.models.toy.world import (
    ATTACK_WORDS,
    PALETTE,
    SHAPES,
    TEMPLATES,
    Spec,
    caption,
    concept_pairs,
    dataset,
    random_spec,
    tuple_words,
)
from snce_lib.resources import data_path
from snce_lib.rng import python_rng
from snce_lib.sae.collect import collect
from snce_lib.sae.formats import from_pretrained
from snce_lib.sae.model import TopKSAE
from snce_lib.sae.train import TrainConfig, train_sae


def train_toy_sae(
    out: Path,
    tokens: int = 1_000_000,
    seed: int = 0,
    n_captions: int = 6000,
    with_corpus: bool = True,
    progress: bool = True,
    layer: str | int | None = None,
    k: int = 32,
    world: str = "minilm",
    data_seed: int = 100,
) -> TopKSAE:
    """The SAE of a toy world: the encoder's block features (block 4 of 6 in both worlds) over world
    captions, plus the project corpus in the MiniLM world. The CLIP world's tokenizer learned only the
    world's words, so corpus prompts reach it as runs of single letters through untrained
    embeddings: they would spend the dictionary on noise, and are left out there. `seed` is the
    SAE's (initialisation and batch order); `data_seed` picks the captions, so SAEs of different
    seeds see the same data."""
    out = Path(out)
    if (out / "sae" / "cfg.json").exists() and (out / "sae" / "metrics.json").exists():
        return from_pretrained(out / "sae")
    enc = toy_encoder(world=world)
    layer = 4 if layer is None else layer
    _, caps = dataset(n_captions, data_seed)
    prompts = list(dict.fromkeys(caps))
    if with_corpus and world == "minilm":
        from snce_lib.prompts import read_prompts

        prompts += read_prompts(data_path("corpus.csv"))
    store = collect(enc, prompts, out / "activations", layer=layer, keep_padding="all", progress=progress)
    res = train_sae(
        store.load(),
        TrainConfig(tokens=tokens, dead_after_tokens=200_000, seed=seed, k=k),
        out_dir=out / "sae",
        encoder_id="offline" if world == "minilm" else enc.encoder_id,
        layer=store.info.layer,
        layer_index=store.info.layer_index,
        progress=progress,
    )
    return res.sae


def world_sae_dir(root: str | Path, world: str = "minilm", seed: int = 0) -> Path:
    """Where the benchmarks keep a world's SAE: <root>/toy (MiniLM, seed 0), <root>/toy_clip, ..._s1."""
    return Path(root) / (("toy" if world == "minilm" else f"toy_{world}") + (f"_s{seed}" if seed else ""))


def target_kind(target: str) -> str:
    if target in PALETTE:
        return "colour"
    if target in SHAPES:
        return "shape"
    raise ValueError(f"target must be a colour ({', '.join(PALETTE)}) or a shape ({', '.join(SHAPES)})")


@dataclass
class PromptSuite:
    target: list[tuple[str, Spec]]
    other: list[tuple[str, Spec]]
    attack: list[tuple[str, Spec]]


def fitting_prompts(target: str) -> set[str]:
    """Every prompt that selects neurons or fits a method for `target`: its concept pairs, both sides."""
    c = toy_concept(target)
    return set(c.concept_prompts) | set(c.deconcept_prompts)


def prompt_suite(target: str, n: int = 48, seed: int = 7, exclude: Collection[str] | None = None) -> PromptSuite:
    """Target, other and attack prompts for `target`, `n` each, none of them in `exclude` (default:
    `fitting_prompts(target)`, so nothing is evaluated on a prompt it was fitted on): a caption that
    is there is drawn again."""
    kind = target_kind(target)
    banned = fitting_prompts(target) if exclude is None else set(exclude)
    rng = python_rng(seed, "toy-prompts")

    def fresh(draw):
        for _ in range(1000):
            text, spec = draw()
            if text not in banned:
                return text, spec
        raise ValueError(f"could not draw a {target!r} prompt outside the excluded set in 1,000 tries")

    def target_spec():
        return random_spec(rng, colour=target) if kind == "colour" else random_spec(rng, shape=target)

    def other():
        o = random_spec(rng)
        while (o.colour if kind == "colour" else o.shape) == target:
            o = random_spec(rng)
        return caption(o, rng), o

    def attack():
        a = target_spec()
        word = rng.choice(ATTACK_WORDS.get(target, tuple_words(target)))
        tpl = rng.choice([t for t in TEMPLATES if "{colour} {shape}" in t])
        if kind == "colour":
            text = f"a {a.shape} that is {word}" if word.startswith("the ") else caption(a, rng, word, None, tpl)
        else:
            text = caption(a, rng, None, word, tpl)
        return text, a

    def target_prompt():
        s = target_spec()
        return caption(s, rng), s

    tgt, oth, att = [], [], []
    for _ in range(n):
        tgt.append(fresh(target_prompt))
        oth.append(fresh(other))
        att.append(fresh(attack))
    return PromptSuite(tgt, oth, att)


def toy_concept(target: str, n: int = 100) -> ConceptPairs:
    pairs = concept_pairs(target, n)
    return ConceptPairs(target, [c for c, _ in pairs], [d for _, d in pairs], tuple_words(target))


def _rate(values: Sequence[str], wanted: str) -> float:
    return float(np.mean([v == wanted for v in values]))


@dataclass
class ToyResult:
    target: str
    selection: Selection
    rows: list[dict] = field(default_factory=list)
    images: dict = field(default_factory=dict)  # (mode, lam) -> {"target": uint8 [n,16,16,3], ...}


def run_experiment(
    pipe: ToyPipeline,
    detector: ToyDetector,
    sae: TopKSAE,
    target: str = "red",
    lams: Sequence[float] = (0.0, 0.6, 0.8, 1.0, 1.2),
    modes: Sequence[str] = ("A", "B"),
    n: int = 48,
    steps: int = 25,
    guidance: float = 3.0,
    seed: int = 7,
    max_deconcept_share: float = 0.0,
    keep_images: bool = True,
) -> ToyResult:
    """The lambda x mode table for one target (a colour or a shape)."""
    kind = target_kind(target)
    enc = pipe.encoder
    sae = sae.requires_grad_(False)
    sel, _ = select_neurons(enc, sae, toy_concept(target), top_k=1, max_deconcept_share=max_deconcept_share)
    suite = prompt_suite(target, n, seed)
    seeds = [seed * 1000 + i for i in range(n)]
    read = detector.colours if kind == "colour" else detector.shapes

    def make(eraser):
        out = {}
        for part in ("target", "other", "attack"):
            prompts = [p for p, _ in getattr(suite, part)]
            out[part] = pipe.generate(prompts, seeds, steps, guidance, method=eraser)
        return out

    t0 = time.perf_counter()
    base = make(None)
    base_feats = detector.features(base["other"])
    res = ToyResult(target, sel)
    configs = [("none", 0.0)] + [(m, lam) for m in modes for lam in lams]
    for mode, lam in configs:
        imgs = base if mode == "none" else make(Eraser(sae, sel.neurons, lam, mode, ", ".join(sel.tuple_words)))
        oth_specs = [s for _, s in suite.other]
        row = {
            "target": target,
            "mode": mode,
            "lam": lam,
            "neuron": sel.neurons[0],
            "target_rate": _rate(read(imgs["target"]), target),
            "attack_rate": _rate(read(imgs["attack"]), target),
            "other_colour_acc": float(
                np.mean([c == s.colour for c, s in zip(detector.colours(imgs["other"]), oth_specs)])
            ),
            "other_shape_acc": float(
                np.mean([c == s.shape for c, s in zip(detector.shapes(imgs["other"]), oth_specs)])
            ),
            "frechet_other": 0.0 if mode == "none" else frechet_distance(base_feats, detector.features(imgs["other"])),
            "target_prompt_colour_acc": float(
                np.mean([c == s.colour for c, s in zip(detector.colours(imgs["target"]), [s for _, s in suite.target])])
            ),
            "target_prompt_shape_acc": float(
                np.mean([c == s.shape for c, s in zip(detector.shapes(imgs["target"]), [s for _, s in suite.target])])
            ),
        }
        res.rows.append(row)
        if keep_images:
            res.images[(mode, lam)] = imgs
    res.seconds = time.perf_counter() - t0
    res.suite = suite
    return res


def erase_and_probe(
    pipe: ToyPipeline,
    read,
    target: str,
    eraser,
    target_prompts: Sequence[str],
    other_prompts: Sequence[str],
    seeds: Sequence[int],
    steps: int = 15,
) -> dict:
    """One erasure measured two ways: a linear probe on what the UNet reads (does the concept stay
    readable?), and the target rate of the images made from the target prompts (`read` turns
    images into labels: the detector's colours or shapes)."""
    leak = concept_leakage(pipe.encoder, eraser, target_prompts, other_prompts)
    imgs = pipe.generate(list(target_prompts), list(seeds), steps, method=eraser)
    return {"target_rate": _rate(read(imgs), target), **leak.as_dict()}


def erasure_rows(
    pipe: ToyPipeline,
    detector: ToyDetector,
    target: str,
    erasers: dict[str, Eraser],
    target_prompts: Sequence[str],
    other_prompts: Sequence[str],
    seeds: Sequence[int],
    steps: int = 15,
) -> list[dict]:
    """`erase_and_probe` for each labelled eraser: one row a setting (label, neurons, lambda, mode)."""
    read = detector.colours if target_kind(target) == "colour" else detector.shapes
    return [
        {"erased": label, "neurons": len(er.neurons), "lam": er.lam, "mode": er.mode,
         **erase_and_probe(pipe, read, target, er, target_prompts, other_prompts, seeds, steps)}
        for label, er in erasers.items()
    ]  # fmt: skip


def accuracy_before_erasure(
    pipe: ToyPipeline, detector: ToyDetector, n: int = 96, seed: int = 11, steps: int = 25, guidance: float = 3.0
) -> dict:
    """The model's colour and shape accuracy on fresh captions with the training words."""
    rng = python_rng(seed, "toy-prompts")
    specs = [random_spec(rng) for _ in range(n)]
    prompts = [caption(s, rng) for s in specs]
    imgs = pipe.generate(prompts, [seed * 1000 + i for i in range(n)], steps, guidance)
    return {
        "colour": float(np.mean([c == s.colour for c, s in zip(detector.colours(imgs), specs)])),
        "shape": float(np.mean([c == s.shape for c, s in zip(detector.shapes(imgs), specs)])),
        "n": n,
        "images": imgs,
        "prompts": prompts,
    }
