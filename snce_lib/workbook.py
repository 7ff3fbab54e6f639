"""The workbook's profiles and the steps the notebooks share.

A profile fixes every size. `offline` (the default without a GPU): the packaged MiniLM, the
project's own corpus and the toy world. `colab` (the default on a GPU): Stable Diffusion's
text encoder and pipeline (`SNCE_MODEL`, default SD v1.4 from the hub) at paper scale.
`colab-smoke`: the colab profile's exact code path (same model id, block name and public
sets) at sizes that run on a CPU in minutes, for CI with a hub-shaped local cache.

Each notebook loads what an earlier one wrote to the run folder (`SNCE_HOME`). When it is
missing, the step says which notebook makes it, and builds it only when asked
(`build=True`, or `SNCE_BUILD_MISSING=1`), because on Colab a silent rebuild can cost an hour.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from .encoders import SD14
from .io import atomic_write_json
from .resources import data_path, run_home

NOTEBOOKS = ["01_train_sae", "02_feature_atlas", "03_neuron_selection", "04_erasure_eval"]


class MissingStepError(RuntimeError):
    """An earlier notebook's output is not in the run folder."""


@dataclass(frozen=True)
class Profile:
    name: str
    encoder: str
    """`offline` (MiniLM) or `model` (the text encoder of `SNCE_MODEL`)."""
    layer: str | None
    prompt_sources: tuple
    """`corpus` (the project's corpus) and/or named public sets."""
    prompts_per_source: int | None
    """At most this many prompts from each source (None: all)."""
    keep_padding: str | int
    tokens: int
    dead_after_tokens: int
    atlas_prompts: int
    coco_negatives: int
    eval_prompts: int
    """Prompts per set in notebook 04's evaluation."""
    pipeline: str
    """Notebook 04's evaluation pipeline: `toy`, or `model` (SNCE_MODEL)."""
    k: int
    """TopK sparsity of the SAE (the paper's 32)."""
    steps: int
    resolution: int
    toy_prompts: int
    """Prompts per set in notebook 04's toy-world table (runs on the CPU)."""
    notes: str = ""

    @property
    def run_dir(self) -> Path:
        return run_home() / self.name

    @property
    def model(self) -> str:
        """The diffusion model: $SNCE_MODEL (a hub id or a local folder), default SD v1.4."""
        return os.environ.get("SNCE_MODEL") or SD14

    @property
    def encoder_spec(self) -> str:
        return "offline" if self.encoder == "offline" else self.model


PROFILES = {
    "offline": Profile(
        "offline", "offline", None, ("corpus",), None, 8, 1_500_000, 200_000, 1500, 500, 8, "toy", 32, 25, 16, 12,
        notes="MiniLM-L6 (packaged), the project's 6,000-prompt corpus, an SAE of 1,536 latents on 1.5M tokens; "
              "the toy world for images. Minutes on 2 CPU cores.",
    ),
    "colab": Profile(
        "colab", "model", "encoder.layers.9", ("diffusiondb_nsfw", "diffusiondb_10k", "i2p"), None,
        8, 100_000_000, 10_000_000, 5000, 1000, 200, "model", 32, 50, 512, 48,
        notes="SD v1.4's CLIP text encoder (or SNCE_MODEL), block 10 (layers.9), 20,701 public prompts, "
              "3,072 latents on 100M tokens (the paper-scale 400M: set SNCE_TOKENS=400000000).",
    ),
    "colab-smoke": Profile(
        "colab-smoke", "model", "encoder.layers.9", ("diffusiondb_nsfw", "diffusiondb_10k", "i2p"), 100,
        8, 60_000, 20_000, 200, 60, 4, "model", 8, 2, 64, 4,
        notes="The colab profile's code path at CPU sizes: the same model id, block and public sets, 300 prompts, "
              "60k tokens, k 8 on the tiny 32-wide encoder, 4 images a set. For CI with a hub-shaped local cache; its numbers mean nothing.",
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
        p = replace(p, tokens=int(os.environ["SNCE_TOKENS"]))
    return p


def build_missing(build: bool | None) -> bool:
    return build if build is not None else os.environ.get("SNCE_BUILD_MISSING", "") in ("1", "true", "yes")


def _missing(what: str, where: Path, notebook: str) -> MissingStepError:
    return MissingStepError(
        f"{what} is not in {where}: run notebook {notebook} first (it writes it there), or build it here "
        f"with build=True (or SNCE_BUILD_MISSING=1). The run folder is SNCE_HOME={run_home()}.")


def training_prompts(p: Profile) -> list[str]:
    from .prompts import load_set, read_prompts

    out: list[str] = []
    for src in p.prompt_sources:
        got = read_prompts(data_path("corpus.csv")) if src == "corpus" else load_set(src).prompts
        out += got[: p.prompts_per_source] if p.prompts_per_source else got
    return out


def ensure_encoder(p: Profile):
    from .encoders import load_encoder

    return load_encoder(p.encoder_spec)


def ensure_store(p: Profile, encoder=None, progress: bool = True):
    from .activations import collect

    encoder = encoder or ensure_encoder(p)
    return collect(encoder, training_prompts(p), p.run_dir / "activations", layer=p.layer,
                   keep_padding=p.keep_padding, progress=progress)


def ensure_sae(p: Profile, encoder=None, progress: bool = True, on_log=None, build: bool | None = None):
    """The profile's SAE: loaded if notebook 01 made it; else trained when `build` (resuming any
    interrupted run), else a MissingStepError naming notebook 01."""
    from .sae import TopKSAE
    from .train import TrainConfig, train_sae

    folder = p.run_dir / "sae"
    if (folder / "metrics.json").exists():
        return TopKSAE.load(folder).requires_grad_(False)
    if not build_missing(build):
        raise _missing("the SAE", folder, "01_train_sae")
    store = ensure_store(p, encoder, progress)
    cfg = TrainConfig(tokens=p.tokens, dead_after_tokens=p.dead_after_tokens, k=p.k)
    res = train_sae(store.load(), cfg, out_dir=folder, encoder_id=store.info.encoder_id, layer=store.info.layer,
                    layer_index=store.info.layer_index, progress=progress, on_log=on_log)
    return res.sae.requires_grad_(False)


#: Deconcept-firing tolerances tried in turn when the strict filter leaves no neuron.
FALLBACK_SHARES = (0.0, 0.01, 0.05, 0.25)


def select_with_fallback(encoder, sae, concept: str = "nudity", top_k: int = 1, **kw):
    """SNCE's strict filter (s^d = 0); where it leaves no neuron (a small or undertrained SAE), the
    smallest tolerance in FALLBACK_SHARES that leaves one. The selection's options record which
    (`max_deconcept_share`), and the notebooks print it in bold. Returns (selection, details)."""
    from .selection import SelectionError, load_concept, select_neurons

    pairs = load_concept(concept)
    for share in FALLBACK_SHARES:
        try:
            return select_neurons(encoder, sae, pairs, top_k=top_k, max_deconcept_share=share, **kw)
        except SelectionError as exc:
            last = exc
    raise last


def ensure_selection(p: Profile, concept: str = "nudity", encoder=None, sae=None, top_k: int = 1,
                     build: bool | None = None):
    """Neurons for `concept`, as notebook 03 saved them (<run folder>/<profile>/neurons_<concept>.json)."""
    from .selection import Selection, SelectionError

    path = p.run_dir / f"neurons_{concept}.json"
    if path.exists():
        try:
            sel = Selection.load(path, sae)
            if len(sel.neurons) >= top_k:
                return sel
        except SelectionError:
            pass  # made on an older SAE: select again
    if not build_missing(build):
        raise _missing(f"the {concept} neurons", path, "03_neuron_selection")
    sel, _ = select_with_fallback(encoder or ensure_encoder(p), sae, concept, top_k)
    sel.save(path)
    return sel


def record(p: Profile, section: str, values: dict) -> None:
    """Add a section to <run folder>/<profile>/summary.json, the workbook's short results summary."""
    path = p.run_dir / "summary.json"
    p.run_dir.mkdir(parents=True, exist_ok=True)
    data = json.loads(path.read_text()) if path.exists() else {}
    data[section] = values
    data["profile"] = asdict(p) | {"prompt_sources": list(p.prompt_sources), "model": p.model}
    atomic_write_json(path, data)


def setup(profile: str | None = None, use_drive: bool = False) -> Profile:
    """The notebooks' first step after the install cell: the profile, the run folder (on Google
    Drive when asked, on Colab), the GPU, and what the install cell added to the runtime."""
    import sys

    import torch

    if use_drive and "google.colab" in sys.modules:
        from google.colab import drive

        drive.mount("/content/drive")
        os.environ["SNCE_HOME"] = "/content/drive/MyDrive/snce-runs"
    p = get_profile(profile)
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (CPU)"
    print(f"profile {p.name}: {p.notes}\nGPU: {gpu} | model: {p.model} | run folder: {p.run_dir}")
    added = installed_since(os.environ.get("SNCE_RUNTIME_FILE", "/tmp/snce-runtime.txt"))
    if added is not None:
        print("the install cell added or changed:", ", ".join(added) or "nothing")
    return p


def installed_since(snapshot: str | os.PathLike) -> list[str] | None:
    """Distributions added or changed since `snapshot` (name==version lines); None if there is none."""
    from importlib.metadata import distributions

    path = Path(snapshot)
    if not path.exists():
        return None
    before = set(path.read_text().split())
    now = {f"{d.metadata['Name']}=={d.version}" for d in distributions() if d.metadata["Name"]}
    return sorted(now - before, key=str.lower)


def ensure_toy(p: Profile, progress: bool = True):
    """(toy pipeline, detector, toy SAE). The model and detector ship with the package; the toy
    SAE is notebook 04's own and is trained into <run folder>/<profile>/toy on first use (about a
    minute on a CPU)."""
    from .toy.detector import ToyDetector
    from .toy.experiment import train_toy_sae
    from .toy.model import load_toy_pipeline

    pipe = load_toy_pipeline()
    sae = train_toy_sae(p.run_dir / "toy", progress=progress)
    return pipe, ToyDetector.load(), sae.requires_grad_(False)
