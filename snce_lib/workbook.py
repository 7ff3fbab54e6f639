"""The workbook's profiles and shared steps, and the runner that executes the notebooks.

A profile fixes every size. `offline` (the default without a GPU) uses the packaged
MiniLM, the project's own corpus and the toy world; `colab` uses SD v1.4 from the hub at
paper scale. Each notebook calls `ensure_*` for what an earlier notebook makes, so any
notebook runs on its own: a missing piece is built (offline) or the user is told which
notebook makes it.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .io import atomic_write_json

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "data" / "corpus.csv"
NOTEBOOKS = ["01_train_sae", "02_feature_atlas", "03_neuron_selection", "04_erasure_eval"]


@dataclass(frozen=True)
class Profile:
    name: str
    encoder: str
    layer: str | None
    prompt_sources: tuple
    """`corpus` (data/corpus.csv) and/or named public sets."""
    keep_padding: str | int
    tokens: int
    dead_after_tokens: int
    atlas_prompts: int
    coco_negatives: int
    eval_prompts: int
    """Prompts per set in notebook 04's evaluation."""
    model: str
    """Pipeline for notebook 04: `toy`, `tiny` or `sd14`."""
    steps: int
    resolution: int
    notes: str = ""

    @property
    def run_dir(self) -> Path:
        return ROOT / "runs" / self.name


PROFILES = {
    "offline": Profile(
        "offline", "offline", None, ("corpus",), 8, 1_500_000, 200_000, 1500, 500, 8, "toy", 25, 16,
        notes="MiniLM-L6 (packaged), the project's 6,000-prompt corpus, an SAE of 1,536 latents on 1.5M tokens; "
              "the toy world for images. Minutes on 2 CPU cores.",
    ),
    "colab": Profile(
        "colab", "CompVis/stable-diffusion-v1-4", "encoder.layers.9", ("diffusiondb_nsfw", "diffusiondb_10k", "i2p"),
        8, 100_000_000, 10_000_000, 5000, 1000, 200, "sd14", 50, 512,
        notes="SD v1.4's CLIP text encoder, block 10 (layers.9), 20,701 public prompts, 3,072 latents on 100M tokens "
              "(the paper-scale 400M: set SNCE_TOKENS=400000000).",
    ),
}


def get_profile(name: str | None = None) -> Profile:
    """The profile named, else $SNCE_PROFILE, else `colab` on a GPU and `offline` elsewhere."""
    import torch

    name = name or os.environ.get("SNCE_PROFILE") or ("colab" if torch.cuda.is_available() else "offline")
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; profiles: {', '.join(PROFILES)}")
    p = PROFILES[name]
    if os.environ.get("SNCE_TOKENS"):
        from dataclasses import replace

        p = replace(p, tokens=int(os.environ["SNCE_TOKENS"]))
    return p


def training_prompts(p: Profile) -> list[str]:
    from .prompts import load_set, read_prompts

    out: list[str] = []
    for src in p.prompt_sources:
        out += read_prompts(CORPUS) if src == "corpus" else load_set(src).prompts
    return out


def ensure_encoder(p: Profile):
    from .encoders import load_encoder

    return load_encoder(p.encoder)


def ensure_store(p: Profile, encoder=None, progress: bool = True):
    from .activations import collect

    encoder = encoder or ensure_encoder(p)
    return collect(encoder, training_prompts(p), p.run_dir / "activations", layer=p.layer,
                   keep_padding=p.keep_padding, progress=progress)


def ensure_sae(p: Profile, encoder=None, progress: bool = True, on_log=None):
    """The profile's SAE: loaded if notebook 01 made it, else trained (resuming any interrupted run)."""
    from .sae import TopKSAE
    from .train import TrainConfig, train_sae

    folder = p.run_dir / "sae"
    if (folder / "metrics.json").exists():
        return TopKSAE.load(folder).requires_grad_(False)
    store = ensure_store(p, encoder, progress)
    cfg = TrainConfig(tokens=p.tokens, dead_after_tokens=p.dead_after_tokens)
    res = train_sae(store.load(), cfg, out_dir=folder, encoder_id=store.info.encoder_id, layer=store.info.layer,
                    layer_index=store.info.layer_index, progress=progress, on_log=on_log)
    return res.sae.requires_grad_(False)


def ensure_selection(p: Profile, concept: str = "nudity", encoder=None, sae=None, top_k: int = 1,
                     max_deconcept_share: float = 0.0):
    """neurons for `concept`, saved as runs/<profile>/neurons_<concept>.json."""
    from .selection import Selection, SelectionError, load_concept, select_neurons

    encoder = encoder or ensure_encoder(p)
    sae = sae or ensure_sae(p, encoder)
    path = p.run_dir / f"neurons_{concept}.json"
    if path.exists():
        try:
            sel = Selection.load(path, sae)
            if len(sel.neurons) >= top_k:
                return sel
        except SelectionError:
            pass  # made on an older SAE: select again
    try:
        sel, _ = select_neurons(encoder, sae, load_concept(concept), top_k=top_k, max_deconcept_share=max_deconcept_share)
    except SelectionError:
        # The strict filter can leave nothing on a small SAE: fall back to a 1% tolerance, and
        # the saved options say so.
        sel, _ = select_neurons(encoder, sae, load_concept(concept), top_k=top_k, max_deconcept_share=0.01)
    sel.save(path)
    return sel


def record(p: Profile, section: str, values: dict) -> None:
    """Add a section to runs/<profile>/summary.json, the short results summary of the workbook."""
    path = p.run_dir / "summary.json"
    p.run_dir.mkdir(parents=True, exist_ok=True)
    data = json.loads(path.read_text()) if path.exists() else {}
    data[section] = values
    data["profile"] = asdict(p) | {"prompt_sources": list(p.prompt_sources)}
    atomic_write_json(path, data)


# ---- running the notebooks ------------------------------------------------------------------
def run_notebooks(profile: str = "offline", names: list[str] | None = None, timeout: int = 1800,
                  out_dir: str | os.PathLike | None = None) -> dict:
    """Execute the notebooks top to bottom (headless) and write executed copies.

    Returns {"executed": [...], "seconds": {...}, "summary": path}. Raises on the first cell error.
    """
    import nbformat
    from nbclient import NotebookClient

    p = get_profile(profile)
    out = Path(out_dir) if out_dir else p.run_dir / "executed"
    out.mkdir(parents=True, exist_ok=True)
    env_before = os.environ.get("SNCE_PROFILE")
    os.environ["SNCE_PROFILE"] = p.name
    seconds = {}
    try:
        for name in names or NOTEBOOKS:
            src = ROOT / "notebooks" / f"{name}.ipynb"
            nb = nbformat.read(src, as_version=4)
            t0 = time.perf_counter()
            NotebookClient(nb, timeout=timeout, kernel_name="python3",
                           resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
            seconds[name] = round(time.perf_counter() - t0, 1)
            tmp = out / f".{name}.ipynb.tmp"
            nbformat.write(nb, tmp)
            os.replace(tmp, out / f"{name}.ipynb")
            print(f"executed {name} in {seconds[name]} s -> {out / (name + '.ipynb')}", flush=True)
    finally:
        if env_before is None:
            os.environ.pop("SNCE_PROFILE", None)
        else:
            os.environ["SNCE_PROFILE"] = env_before
    record(p, "notebook_seconds", seconds)
    return {"executed": [str(out / f"{n}.ipynb") for n in seconds], "seconds": seconds,
            "summary": str(p.run_dir / "summary.json")}


def detector_sets(p: Profile, concept: str = "nudity") -> tuple[list[str], list[str], str]:
    """(positives, negatives, description) for the neuron-as-detector ROC.

    Public sets when they are here or can be fetched: nudity = I2P prompts with
    nudity_percentage > 50 plus Ring-A-Bell's 50; violence = I2P's violence prompts;
    negatives = the first COCO-30k captions. Otherwise the project's held-out concept
    prompts against their deconcept twins, and the description says so.
    """
    from .prompts import PromptFileError, load_set
    from .selection import load_concept

    try:
        neg = load_set("coco", n=p.coco_negatives).prompts
        if concept == "nudity":
            i2p = load_set("i2p").frame
            pos = i2p[i2p["nudity_percentage"] > 50]["prompt"].tolist() + load_set("ring_a_bell_50").prompts
            desc = f"I2P nudity>50 + Ring-A-Bell ({len(pos)}) vs COCO-30k captions ({len(neg)})"
        elif concept == "violence":
            pos = load_set("i2p_violence").prompts
            desc = f"I2P violence ({len(pos)}) vs COCO-30k captions ({len(neg)})"
        else:
            raise PromptFileError("no public set for this concept")
        return pos, neg, desc
    except PromptFileError:
        c = load_concept(concept)
        return c.concept_prompts, c.deconcept_prompts, f"project concept prompts vs their deconcept twins ({len(c.concept_prompts)} each)"


def ensure_toy(p: Profile, progress: bool = True):
    """(toy pipeline, detector, toy SAE). The model and detector are committed under data/toy;
    the toy SAE is trained into runs/<profile>/toy on first use (about a minute on a CPU)."""
    from .toy.detector import ToyDetector
    from .toy.experiment import train_toy_sae
    from .toy.model import load_toy_pipeline

    pipe = load_toy_pipeline()
    sae = train_toy_sae(p.run_dir / "toy", progress=progress)
    return pipe, ToyDetector.load(), sae.requires_grad_(False)


def one_image(pipe, prompt: str, seed: int, steps: int, guidance: float, resolution: int):
    """uint8 [H, W, 3]: one image of `prompt` under `seed`, from the toy or an SD pipeline."""
    import numpy as np
    import torch

    from .toy.model import ToyPipeline

    if isinstance(pipe, ToyPipeline):
        return pipe.generate([prompt], [seed], steps, guidance)[0]
    g = torch.Generator(device="cpu").manual_seed(seed)
    img = pipe(prompt, num_inference_steps=steps, guidance_scale=guidance, generator=g, height=resolution,
               width=resolution, output_type="np").images[0]
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


def erasure_backend(pipe, encoder, sae, ranking, tuple_prompt: str, seed: int = 0, steps: int = 25,
                    guidance: float = 3.0, resolution: int = 16):
    """The two callbacks of the erasure panel, as plain functions:
    generate(prompt, lam, mode, top_k) -> (before, after) and activations(prompt, top_k) -> (tokens, values)."""
    from .erase import Eraser
    from .features import prompt_codes

    cache: dict = {}

    def generate(prompt: str, lam: float, mode: str, top_k: int):
        if prompt not in cache:
            cache[prompt] = one_image(pipe, prompt, seed, steps, guidance, resolution)
        er = Eraser(sae, list(ranking[:top_k]), lam, mode, tuple_prompt)
        with er.attached(pipe):
            after = one_image(pipe, prompt, seed, steps, guidance, resolution)
        return cache[prompt], after

    def activations(prompt: str, top_k: int):
        codes = prompt_codes(encoder, sae, [prompt])
        real = codes.real[0]
        toks = encoder.token_strings(codes.token_ids[0][real].tolist())
        vals = codes.codes[0][real][:, list(ranking[:top_k])].sum(-1).numpy()
        return toks, vals

    return generate, activations


def eval_sets(p: Profile) -> tuple[dict, str]:
    """Prompt sets for notebook 04's evaluation: I2P nudity, the Ring-A-Bell-style pairs and COCO,
    `eval_prompts` rows each. Without the public sets (no ../shared/data, no network), the
    project's own nudity concept prompts and corpus stand in, and the description says so."""
    import pandas as pd

    from .prompts import PromptFileError, PromptSet, load_set, read_prompts
    from .selection import load_concept

    try:
        return {name: load_set(name, n=p.eval_prompts) for name in ("i2p_nudity", "ring_a_bell_79", "coco")}, \
            "public sets (I2P nudity >= 50, RECE's Ring-A-Bell-style 79, COCO-30k)"
    except PromptFileError:
        n = p.eval_prompts
        concept = load_concept("nudity").concept_prompts
        corpus = read_prompts(CORPUS)
        frame = lambda prompts: pd.DataFrame({"prompt": prompts, "case_number": range(len(prompts)),
                                              "evaluation_seed": range(len(prompts)), "evaluation_guidance": float("nan")})
        return {"i2p_nudity": PromptSet("project_nudity", frame(concept[:n])),
                "ring_a_bell_79": PromptSet("project_nudity_2", frame(concept[n : 2 * n])),
                "coco": PromptSet("project_corpus", frame(corpus[:n]))}, \
            "STAND-INS: the public sets are not here and could not be fetched; project prompts are used"
