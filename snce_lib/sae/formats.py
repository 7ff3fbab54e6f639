"""Every file an SAE is written to or read from, in one module: snce's own checkpoint, SAELens' and
EleutherAI sparsify's formats, and the Hugging Face hub. The model (`sae.model`) knows none of them.

**snce's checkpoint** is a folder: `sae.safetensors` + `cfg.json` (+ `metrics.json` after training).
`load` ignores unknown keys in cfg.json and checks every tensor's shape; nothing is ever unpickled.

**SAEs that travel**: `to_saelens` / `from_saelens` (SAELens' `SAE.load_from_disk` and, pushed with
`push_to_hub(..., format="saelens")`, its `SAE.from_pretrained` open it), `to_sparsify` /
`from_sparsify` (sparsify's `SparseCoder.load_from_disk` and `load_from_hub`). Safetensors and JSON only.
(SAE-Dashboard's runner also needs a TransformerLens model of the encoder, which a CLIP or MiniLM text
encoder is not, so its dashboards are not built from these files here.) The three TopK SAEs compute the
same thing under other names:

| snce            | SAELens (`topk`)          | sparsify                 |
|-----------------|---------------------------|--------------------------|
| W_enc [m, d]    | W_enc [d, m] (transposed) | encoder.weight [m, d]    |
| b_enc [m]       | b_enc                     | encoder.bias             |
| W_dec [m, d]    | W_dec [m, d]              | W_dec [m, d]             |
| b_pre [d]       | b_dec (subtracted first)  | b_dec (subtracted first) |

All three encode TopK(ReLU(W_enc (x - b) + b_enc)) and decode W_dec^T z + b.

**The hub**: `from_pretrained(repo_or_folder)` is the one loader (the CLI, the workbook and the
benchmarks load through it). It reads any of the three formats from a local folder or a hub repository
(optionally one of its sub-folders, as SAELens releases keep one SAE per folder). Offline
(`HF_HUB_OFFLINE=1`) it reads the local hub cache and says so when the repository is not there; a path
that does not exist is reported as a missing folder, not sent to the hub. `push_to_hub(sae, repo_id,
format=)` uploads one of three layouts, each with a model card (README.md: encoder, block, data, token
budget, metrics):
- "snce" (default): the checkpoint as `save` writes it, at the repository root;
- "saelens": `<sae_id>/cfg.json` + `<sae_id>/sae_weights.safetensors` (what Neuronpedia asks for);
- "sparsify": `<sae_id>/cfg.json` + `<sae_id>/sae.safetensors`.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import asdict
from pathlib import Path

import torch

from snce_lib.io import atomic_save_safetensors, atomic_write_json, atomic_write_text, read_json
from snce_lib.sae.model import SAEConfig, TopKSAE, fingerprint

CHECKPOINT_KIND = "snce-topk-sae"
FILES = ("sae.safetensors", "cfg.json", "metrics.json", "README.md", "sae_weights.safetensors")
FORMATS = ("snce", "saelens", "sparsify")
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt, foreign, or does not fit."""


# ---- snce's own checkpoint ------------------------------------------------------------------------
def save(sae: TopKSAE, path: str | os.PathLike) -> Path:
    """Write `sae.safetensors` + `cfg.json` (and `metrics.json` when trained) into folder `path`."""
    from snce_lib import __version__

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    atomic_save_safetensors(path / "sae.safetensors", dict(sae.state_dict()))
    atomic_write_json(path / "cfg.json", {"kind": CHECKPOINT_KIND, "library_version": __version__, **asdict(sae.cfg)})
    if sae.metrics:
        atomic_write_json(path / "metrics.json", sae.metrics)
    return path


def load(path: str | os.PathLike, device: str | torch.device = "cpu") -> TopKSAE:
    """The SAE in snce folder `path`, with its training metrics (`metrics.json`, when training wrote one)."""
    sae = from_tensors(*read_checkpoint(path), device=device)
    metrics = Path(path) / "metrics.json"
    if metrics.exists():
        sae.metrics = read_json(metrics, "SAE training metrics", kind=None)
    return sae


def from_tensors(cfg: SAEConfig, tensors: dict, device="cpu") -> TopKSAE:
    """A TopKSAE of `cfg` holding `tensors` (W_enc, b_enc, W_dec, b_pre), every shape checked."""
    sae = TopKSAE(cfg)
    expected = {k: v.shape for k, v in sae.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in tensors.items()}
    if set(got) != set(expected) or any(tuple(expected[k]) != got[k] for k in expected):
        raise CheckpointError(f"checkpoint tensors {got} do not fit an SAE with cfg {cfg}")
    sae.load_state_dict({k: v.float() for k, v in tensors.items()})
    return sae.to(device)


def read_checkpoint(path: str | os.PathLike) -> tuple[SAEConfig, dict]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    cfg_file, weights = path / "cfg.json", path / "sae.safetensors"
    if not cfg_file.exists() or not weights.exists():
        raise CheckpointError(f"{path} is not an SAE checkpoint: it needs sae.safetensors and cfg.json")
    try:
        raw = read_json(cfg_file, "SAE config", kind=None)
    except ValueError as exc:
        raise CheckpointError(str(exc)) from None
    if not isinstance(raw, dict) or raw.get("kind") != CHECKPOINT_KIND:
        raise CheckpointError(
            f"{path} is not a checkpoint of this library (cfg.json kind {raw.get('kind') if isinstance(raw, dict) else None!r})"
        )
    fields = SAEConfig.__dataclass_fields__
    missing = [f for f in ("d_in", "n_latents") if f not in raw]
    if missing:
        raise CheckpointError(f"{cfg_file} lacks {', '.join(missing)}")
    cfg = SAEConfig(**{k: v for k, v in raw.items() if k in fields})

    def whole(v) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    bad = [
        f"{f} = {getattr(cfg, f)!r}"
        for f in ("d_in", "n_latents", "k", "layer_index", "encoder_index")
        if not whole(getattr(cfg, f)) or (f not in ("layer_index", "encoder_index") and getattr(cfg, f) <= 0)
    ]
    if bad or not isinstance(cfg.layer, str):
        raise CheckpointError(
            f"{cfg_file} is damaged or hand-edited ({', '.join(bad) or 'layer is not a name'}); "
            "retrain with `snce train` or restore the file"
        )
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
        raise CheckpointError(f"{weights} is corrupt: {exc}") from exc
    return cfg, tensors


# ---- SAELens and sparsify -------------------------------------------------------------------------
def to_saelens(sae: TopKSAE, folder: str | os.PathLike, metadata: dict | None = None) -> Path:
    """Write `cfg.json` + `sae_weights.safetensors` as SAELens 6 saves a `topk` SAE."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    c = sae.cfg
    meta = {
        "model_name": c.encoder_id,
        "hook_name": c.layer,
        "snce": {"layer_index": c.layer_index, "encoder_index": c.encoder_index},
        **(metadata or {}),
    }
    atomic_save_safetensors(
        folder / "sae_weights.safetensors",
        {
            "W_enc": sae.W_enc.detach().T.contiguous(),
            "b_enc": sae.b_enc.detach(),
            "W_dec": sae.W_dec.detach(),
            "b_dec": sae.b_pre.detach(),
        },  # fmt: skip
    )
    atomic_write_json(
        folder / "cfg.json",
        {
            "architecture": "topk",
            "d_in": c.d_in,
            "d_sae": c.n_latents,
            "k": c.k,
            "dtype": "float32",
            "device": "cpu",
            "apply_b_dec_to_input": True,
            "normalize_activations": "none",
            "reshape_activations": "none",
            "rescale_acts_by_decoder_norm": False,
            "metadata": meta,
        },  # fmt: skip
    )
    return folder


def from_saelens(folder: str | os.PathLike) -> TopKSAE:
    """An SAELens `topk` SAE folder as an snce TopKSAE (the variants that compute something else are refused)."""
    folder = Path(folder)
    cfg = read_json(folder / "cfg.json", "SAELens config")
    wants = {"architecture": "topk", "apply_b_dec_to_input": True, "normalize_activations": "none",
             "rescale_acts_by_decoder_norm": False}  # fmt: skip
    other = {k: cfg.get(k, v) for k, v in wants.items() if cfg.get(k, v) != v}
    if other:
        raise CheckpointError(f"{folder} is an SAELens SAE this library cannot compute the same way ({other})")
    t = _tensors(folder / "sae_weights.safetensors", ("W_enc", "b_enc", "W_dec", "b_dec"))
    meta = cfg.get("metadata") or {}
    layer_index = (meta.get("snce") or {}).get("layer_index", -1)
    sc = SAEConfig(int(cfg["d_in"]), int(cfg["d_sae"]), int(cfg["k"]), str(meta.get("model_name") or ""),
                   str(meta.get("hook_name") or ""), int(layer_index),
                   int((meta.get("snce") or {}).get("encoder_index", 0)))  # fmt: skip
    return from_tensors(sc, {"W_enc": t["W_enc"].T, "b_enc": t["b_enc"], "W_dec": t["W_dec"], "b_pre": t["b_dec"]})


def from_sparsify(folder: str | os.PathLike) -> TopKSAE:
    """A sparsify SparseCoder checkpoint (`cfg.json` + `sae.safetensors`) as an snce TopKSAE."""
    folder = Path(folder)
    cfg = read_json(folder / "cfg.json", "sparsify config")
    if cfg.get("activation", "topk") != "topk" or cfg.get("transcode") or cfg.get("skip_connection"):
        raise CheckpointError(f"{folder} is a sparsify coder other than a plain TopK SAE ({cfg})")
    t = _tensors(folder / "sae.safetensors", ("encoder.weight", "encoder.bias", "W_dec", "b_dec"))
    m, d = t["encoder.weight"].shape
    ours = cfg.get("snce") or {}  # written by to_sparsify; a checkpoint sparsify trained has none
    sc = SAEConfig(int(d), int(m), int(cfg["k"]), str(ours.get("encoder_id") or ""), str(ours.get("layer") or ""),
                   int(ours.get("layer_index", -1)), int(ours.get("encoder_index", 0)))  # fmt: skip
    return from_tensors(sc, {"W_enc": t["encoder.weight"], "b_enc": t["encoder.bias"], "W_dec": t["W_dec"],
                                     "b_pre": t["b_dec"]})  # fmt: skip


def to_sparsify(sae: TopKSAE, folder: str | os.PathLike) -> Path:
    """Write `cfg.json` + `sae.safetensors` as sparsify 1.x saves a plain TopK SparseCoder. The cfg's
    "snce" entry (sparsify ignores keys it does not know) keeps the encoder and block for `from_sparsify`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    c = sae.cfg
    atomic_save_safetensors(
        folder / "sae.safetensors",
        {
            "encoder.weight": sae.W_enc.detach().contiguous(),
            "encoder.bias": sae.b_enc.detach(),
            "W_dec": sae.W_dec.detach().contiguous(),
            "b_dec": sae.b_pre.detach(),
        },  # fmt: skip
    )
    atomic_write_json(
        folder / "cfg.json",
        {
            "activation": "topk",
            "expansion_factor": max(1, c.n_latents // c.d_in),
            "normalize_decoder": True,
            "num_latents": c.n_latents,
            "k": c.k,
            "multi_topk": False,
            "skip_connection": False,
            "transcode": False,
            "d_in": c.d_in,
            "snce": {
                "encoder_id": c.encoder_id,
                "layer": c.layer,
                "layer_index": c.layer_index,
                "encoder_index": c.encoder_index,
            },
        },  # fmt: skip
    )
    return folder


def _tensors(path: Path, names: tuple[str, ...]) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        t = load_file(str(path))
    except (OSError, SafetensorError) as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from None
    missing = [n for n in names if n not in t]
    if missing:
        raise CheckpointError(f"{path} lacks {', '.join(missing)}")
    return {n: t[n].float() for n in names}


# ---- any format, from a folder or the hub ---------------------------------------------------------
def checkpoint_format(folder: Path) -> str:
    """The format, "snce", "saelens" or "sparsify", from the folder's files and cfg.json."""
    cfg = folder / "cfg.json"
    if not cfg.exists():
        raise CheckpointError(f"{folder} holds no SAE: it has no cfg.json")
    raw = read_json(cfg, "SAE config", kind=None)
    if isinstance(raw, dict) and raw.get("kind") == CHECKPOINT_KIND:
        return "snce"
    if (folder / "sae_weights.safetensors").exists():
        return "saelens"
    if (folder / "sae.safetensors").exists():
        return "sparsify"
    raise CheckpointError(f"{folder} has a cfg.json but no SAE weights this library reads")


def load_folder(folder: str | os.PathLike, device="cpu") -> TopKSAE:
    folder = Path(folder)
    fmt = checkpoint_format(folder)
    if fmt == "snce":
        return load(folder, device=device)
    sae = from_saelens(folder) if fmt == "saelens" else from_sparsify(folder)
    return sae.to(device)


def from_pretrained(repo_or_folder: str | os.PathLike, subfolder: str | None = None, revision: str | None = None,
                    cache_dir: str | os.PathLike | None = None, device="cpu") -> TopKSAE:  # fmt: skip
    """An SAE from a local folder or a hub repository id ("owner/name"), in any format `load_folder` reads."""
    local = Path(repo_or_folder).expanduser()
    if local.is_dir():
        folder = local / subfolder if subfolder else local
        if not folder.is_dir():
            raise CheckpointError(f"{local} has no folder {subfolder!r}")
        return load_folder(folder, device)
    if local.exists():
        raise CheckpointError(f"{local} is a file; pass the folder that holds the SAE (its cfg.json and weights)")
    repo_id = str(repo_or_folder)
    # "runs/sae" is a mistyped folder when ./runs exists, not a repository "sae" of a user "runs"
    if not _REPO_ID.match(repo_id) or local.parent.is_dir() and str(local.parent) not in ("", "."):
        raise CheckpointError(f"no SAE folder {local} (from {Path.cwd()}): it does not exist"
                              + ("" if _REPO_ID.match(repo_id) else ", and it is not a hub repository id (owner/name)"))  # fmt: skip
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    patterns = [f"{subfolder}/{f}" if subfolder else f for f in FILES]
    try:
        root = snapshot_download(repo_id, revision=revision, cache_dir=cache_dir, allow_patterns=patterns)
    except LocalEntryNotFoundError:
        raise CheckpointError(
            f"{repo_id} is neither a folder here ({Path.cwd()}) nor in the local hub cache, and the hub cannot be "
            "reached (HF_HUB_OFFLINE or no network); download it once online, or pass a folder"
        ) from None
    except (RepositoryNotFoundError, HfHubHTTPError) as exc:
        raise CheckpointError(f"cannot fetch {repo_id} from the hub: {exc}") from None
    folder = Path(root) / subfolder if subfolder else Path(root)
    if not folder.is_dir():
        raise CheckpointError(f"{repo_id} has no folder {subfolder!r}")
    return load_folder(folder, device)


def _fmt(v, spec: str = "") -> str:
    return "not recorded" if v is None else format(v, spec)


def _use_lines(repo_id: str, format: str, sae_id: str) -> list[str]:
    repo = repo_id or "FOLDER"
    if format == "saelens":
        return ["from sae_lens import SAE", f'sae = SAE.from_pretrained(release="{repo}", sae_id="{sae_id}")',
                "# or, with snce:", "from snce_lib.sae.formats import from_pretrained",
                f'sae = from_pretrained("{repo}", subfolder="{sae_id}")']  # fmt: skip
    if format == "sparsify":
        return ["from sparsify import SparseCoder", f'sae = SparseCoder.load_from_hub("{repo}", hookpoint="{sae_id}")',
                "# or, with snce:", "from snce_lib.sae.formats import from_pretrained",
                f'sae = from_pretrained("{repo}", subfolder="{sae_id}")']  # fmt: skip
    return ["from snce_lib.sae.formats import from_pretrained", f'sae = from_pretrained("{repo}")']


def model_card(sae: TopKSAE, repo_id: str = "", format: str = "snce", sae_id: str = "") -> str:
    """The README.md of a pushed SAE: what it reads, what it was trained on, how well it reconstructs."""
    c, m = sae.cfg, sae.metrics
    data, train = m.get("data") or {}, m.get("train_config") or {}
    tokens = m.get("tokens_seen")
    # a hub id links the card to its encoder's repository; "offline" or a path does not
    base = [f"base_model: {c.encoder_id}"] if c.encoder_id.count("/") == 1 else []
    lines = [
        "---",
        "library_name: snce",
        "tags: [sparse-autoencoder, topk-sae, interpretability, concept-erasure]",
        *base,
        "---",
        f"# {repo_id or 'TopK sparse autoencoder'}",
        "",
        f"A TopK sparse autoencoder (k = {c.k}) with {c.n_latents:,} latents on the {c.d_in}-wide per-token",
        f"features of block `{c.layer or 'not recorded'}` (index {c.layer_index}) of text encoder {c.encoder_index} "
        f"(`text_encoder{'_' + str(c.encoder_index + 1) if c.encoder_index else ''}`) of "
        f"`{c.encoder_id or 'not recorded'}`, trained with snce (Single Neuron-based Concept Erasure).",
        "",
        "## Data",
        f"- prompts: {_fmt(data.get('prompts'), ',')}, token rows: {_fmt(data.get('rows'), ',')} "
        f"(padding kept per prompt: {_fmt(data.get('keep_padding'))}, max length {_fmt(data.get('max_length'))})",
        f"- prompts' sha256: {_fmt(data.get('prompts_sha256'))}",
        "",
        "## Training",
        f"- token budget: {_fmt(tokens, ',')} token vectors in {_fmt(m.get('steps'))} steps of "
        f"{_fmt(train.get('batch_size'))}",
        f"- Adam, learning rate {_fmt(train.get('lr'))}, AuxK weight {_fmt(train.get('auxk_alpha'))}, "
        f"seed {_fmt(train.get('seed'))}",
        "",
        "## Metrics (held-out rows)",
        f"- fraction of variance unexplained (FVU): {_fmt(m.get('fvu'), '.4f')} on {_fmt(m.get('eval_rows'), ',')} rows",
        f"- L0: {_fmt(m.get('l0'), '.1f')}; dead latents (no firing in the last "
        f"{_fmt(m.get('dead_window_tokens'), ',')} tokens): {_fmt(m.get('dead_fraction'), '.2%')}",
        "",
        "## Use",
        *([f"The SAE is in the {format} layout, in the folder `{sae_id}`."] if format != "snce" else []),
        "```python",
        *_use_lines(repo_id, format, sae_id),
        "```",
        f"Weights fingerprint: `{fingerprint(sae)}`.",
        "",
    ]
    return "\n".join(lines)


def save_pretrained(sae: TopKSAE, folder: str | os.PathLike, repo_id: str = "") -> Path:
    """The checkpoint (`save`) and its model card (README.md) in `folder`."""
    folder = save(sae, folder)
    atomic_write_text(folder / "README.md", model_card(sae, repo_id))
    return folder


def default_sae_id(sae: TopKSAE) -> str:
    """The folder an SAE gets in a SAELens or sparsify repository: its block's module path."""
    return sae.cfg.layer or (f"layer_{sae.cfg.layer_index}" if sae.cfg.layer_index >= 0 else "sae")


def write_layout(sae: TopKSAE, folder: str | os.PathLike, repo_id: str = "", format: str = "snce",
                 sae_id: str | None = None) -> Path:  # fmt: skip
    """What `push_to_hub` uploads, written to `folder`: the checkpoint in `format` and the card."""
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {format!r}")
    folder = Path(folder)
    if format == "snce":
        return save_pretrained(sae, folder, repo_id)
    sae_id = sae_id or default_sae_id(sae)
    if not sae_id or sae_id.startswith(("/", ".")) or ".." in Path(sae_id).parts:
        raise ValueError(f"sae_id must be a relative folder name inside the repository, not {sae_id!r}")
    if format == "saelens":
        to_saelens(sae, folder / sae_id)
    else:
        to_sparsify(sae, folder / sae_id)
    atomic_write_text(folder / "README.md", model_card(sae, repo_id, format, sae_id))
    return folder


def push_to_hub(sae: TopKSAE, repo_id: str, private: bool = False, token: str | None = None,
                commit_message: str = "Upload SAE with snce", api=None, format: str = "snce",
                sae_id: str | None = None) -> str:  # fmt: skip
    """Create `repo_id` if needed and upload the SAE (in `format`: "snce", "saelens" or "sparsify";
    the last two in the folder `sae_id`, default the block's module path) and its card in one
    commit; returns the commit's URL."""
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    with tempfile.TemporaryDirectory() as tmp:
        write_layout(sae, tmp, repo_id, format, sae_id)  # a bad format or sae_id fails before the repository exists
        api.create_repo(repo_id, private=private, exist_ok=True)
        info = api.upload_folder(repo_id=repo_id, folder_path=tmp, commit_message=commit_message)
    return str(getattr(info, "commit_url", info))
