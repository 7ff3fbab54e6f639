"""The steps the notebooks share: each loads what an earlier notebook wrote to the run folder
(`SNCE_HOME`), or says which notebook makes it and builds it only when asked (`build=True`, or
`SNCE_BUILD_MISSING=1`), because on Colab a silent rebuild can cost an hour.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from snce_lib.concepts.selection import FALLBACK_SHARES  # noqa: F401 (the workbook's name for it)
from snce_lib.io import atomic_write_json
from snce_lib.resources import data_path
from snce_lib.workbook.profiles import Profile, _missing, build_missing


def training_prompts(p: Profile) -> list[str]:
    from snce_lib.prompts import load_set, read_prompts

    out: list[str] = []
    for src in p.prompt_sources:
        got = read_prompts(data_path("corpus.csv")) if src == "corpus" else load_set(src).prompts
        out += got[: p.prompts_per_source] if p.prompts_per_source else got
    return out


def ensure_encoder(p: Profile):
    from snce_lib.models.encoders import load_encoder

    return load_encoder(p.encoder_spec)


def ensure_store(p: Profile, encoder=None, progress: bool = True):
    from snce_lib.sae.collect import collect

    encoder = encoder or ensure_encoder(p)
    return collect(
        encoder,
        training_prompts(p),
        p.run_dir / "activations",
        layer=p.layer,
        keep_padding=p.keep_padding,
        progress=progress,
    )


def sae_config(p: Profile, **overrides):
    """The profile's `TrainConfig`, with any field replaced (`expansion=2`, `auxk_alpha=0`, ...)."""
    from snce_lib.sae.train import TrainConfig

    unknown = sorted(set(overrides) - set(TrainConfig.__dataclass_fields__))
    if unknown:
        raise ValueError(f"not TrainConfig fields: {', '.join(unknown)}")
    base = {"tokens": p.tokens, "dead_after_tokens": p.dead_after_tokens, "k": p.k, "precision": p.precision}
    return TrainConfig(**{**base, **overrides})


def ensure_sae(p: Profile, encoder=None, progress: bool = True, on_log=None, build: bool | None = None,
               overrides: dict | None = None, folder: str = "sae"):  # fmt: skip
    """The profile's SAE: loaded if notebook 01 made it; else trained when `build` (resuming any
    interrupted run), else a MissingStepError naming notebook 01.

    `overrides` (TrainConfig fields) with another `folder` under the run folder train a variant
    beside it (notebook 01's exercises: `overrides={"expansion": 2}, folder="sae_expansion2"`)
    on the same store, and never touch the SAE that notebooks 02-04 read. A variant folder is
    built when missing, and one trained with other settings is refused."""
    from snce_lib.sae.formats import from_pretrained
    from snce_lib.sae.train import train_sae

    overrides = dict(overrides or {})
    if overrides and folder == "sae":
        raise ValueError(
            "a variant needs its own folder (e.g. folder='sae_expansion2'): 'sae' is the one notebooks 02-04 read"
        )
    target = p.run_dir / folder
    if (target / "metrics.json").exists():
        sae = from_pretrained(target).requires_grad_(False)
        saved = sae.metrics.get("train_config", {})
        differ = {k: (saved.get(k), v) for k, v in overrides.items() if saved.get(k) != v}
        if differ:
            raise ValueError(f"{target} holds an SAE trained with other settings (saved, asked: {differ}); "
                             "pick a new folder")  # fmt: skip
        return sae
    if folder == "sae" and not build_missing(build):
        raise _missing("the SAE", target, "01_train_sae")
    store = ensure_store(p, encoder, progress)
    data, buffer = store.training_source()  # streamed through a shuffle buffer when it outgrows memory
    cfg = sae_config(p, shuffle_buffer=buffer, **overrides)
    res = train_sae(
        data,
        cfg,
        out_dir=target,
        encoder_id=store.info.encoder_id,
        layer=store.info.layer,
        layer_index=store.info.layer_index,
        encoder_index=store.info.encoder_index,
        data_info=store.describe(),
        groups=store.meta()["prompt_id"],  # hold out whole prompts, not rows
        progress=progress,
        on_log=on_log,
    )
    return res.sae.requires_grad_(False)


def select_with_fallback(encoder, sae, concept: str = "nudity", top_k: int = 1, **kw):
    """`concepts.selection.select_with_fallback` for a named concept: the strict filter, else the
    smallest tolerance in FALLBACK_SHARES that leaves a neuron (the notebooks print which in bold).
    Returns (selection, details)."""
    from snce_lib.concepts.pairs import load_concept
    from snce_lib.concepts.selection import select_with_fallback as select

    return select(encoder, sae, load_concept(concept), top_k=top_k, **kw)


def ensure_selection(
    p: Profile, concept: str = "nudity", encoder=None, sae=None, top_k: int = 1, build: bool | None = None
):
    """Neurons for `concept`, as notebook 03 saved them (<run folder>/<profile>/neurons_<concept>.json)."""
    from snce_lib.concepts.pairs import SelectionError
    from snce_lib.concepts.selection import Selection

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


def ensure_toy(p: Profile, progress: bool = True):
    """(toy pipeline, detector, toy SAE). The model and detector ship with the package; the toy
    SAE is notebook 04's own and is trained into <run folder>/<profile>/toy on first use (about a
    minute on a CPU)."""
    from snce_lib.evaluation.toy import train_toy_sae
    from snce_lib.models.toy.detector import ToyDetector
    from snce_lib.models.toy.model import load_toy_pipeline

    pipe = load_toy_pipeline()
    sae = train_toy_sae(p.run_dir / "toy", progress=progress)
    return pipe, ToyDetector.load(), sae.requires_grad_(False)


def ensure_pipeline(p: Profile):
    """The profile's text-to-image pipeline alone: offline the toy pipeline (its encoder is the offline
    MiniLM, so the offline SAE's features steer it), else SNCE_MODEL (Stable Diffusion on Colab)."""
    if p.pipeline == "toy":
        from snce_lib.models.toy.model import load_toy_pipeline

        return load_toy_pipeline()
    from snce_lib.models.pipelines import load_pipeline

    return load_pipeline(p.model)


def ensure_look(p: Profile, pipe, sae):
    """The pipeline that draws for looking (feature strips, the panel): offline the toy pipeline itself;
    else `SNCE_LOOK_MODEL` (SD-Turbo on a GPU) when its text encoder computes the SAE's features, else
    the main model, with the reason (`models.look`). The evaluation protocol never uses it."""
    from snce_lib.models.look import Look, choose

    if p.pipeline == "toy":
        return Look(pipe, "toy", 15, 3.0, "offline: the toy pipeline draws (its encoder is the SAE's MiniLM)", False)
    return choose(pipe, sae, main_steps=p.steps, main_guidance=7.5, main_name=p.model)


@dataclass
class EvalSetup:
    """What notebook 04's evaluation runs on: the pipeline, the protocol, and how quality is measured."""

    pipe: object
    protocol: object
    model_name: str
    extractor: object = None
    """FID features: the toy detector's offline, the standard Inception (None) on the real pipeline."""
    clip: tuple | None = None
    fid_size: int = 299


def ensure_eval_setup(p: Profile, toy=None, detector=None) -> EvalSetup:
    """The profile's evaluation: offline, the toy pipeline at 16 px with its detector's features for
    FID and no CLIP (no weights offline); else SNCE_MODEL under the paper's protocol at the profile's
    steps and resolution, with CLIP ViT-B/32 (fetched from the hub on first use)."""
    from snce_lib.evaluation.protocols import get_protocol

    if p.pipeline == "toy":
        if toy is None or detector is None:
            toy, detector, _ = ensure_toy(p)
        protocol = get_protocol("snce-paper", steps=20, resolution=16, guidance=3.0)
        return EvalSetup(toy, protocol, "toy", detector.features, None, 16)
    from snce_lib.evaluation.metrics import load_clip
    from snce_lib.models.encoders import pick_device

    protocol = get_protocol("snce-paper", steps=p.steps, resolution=p.resolution)
    clip = load_clip("openai/clip-vit-base-patch32", pick_device())
    return EvalSetup(ensure_pipeline(p), protocol, p.model, None, clip, 299)
