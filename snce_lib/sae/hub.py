"""SAEs on the Hugging Face hub: `from_pretrained(repo_or_folder)` and `push_to_hub(sae, repo_id)`,
with a model card that states the encoder, block, data, token budget and metrics.

`from_pretrained` is the one loader: the CLI, the workbook and the widgets' callers all load through
it. It reads an snce checkpoint, an SAELens `topk` folder or a sparsify one, from a local folder or a
hub repository (optionally one of its sub-folders, as SAELens releases keep one SAE per folder).
Offline (`HF_HUB_OFFLINE=1`) it reads the local hub cache and says so when the repository is not
there; a path that does not exist is reported as a missing folder, not sent to the hub.

`push_to_hub(..., format=)` uploads one of three layouts, each with the card as README.md:
- "snce" (default): the checkpoint as `save` writes it (`sae.safetensors`, `cfg.json`, `metrics.json`)
  at the repository root;
- "saelens": `<sae_id>/cfg.json` + `<sae_id>/sae_weights.safetensors`, what SAELens'
  `SAE.from_pretrained(release=repo_id, sae_id=...)` downloads (and what Neuronpedia asks for);
- "sparsify": `<sae_id>/cfg.json` + `<sae_id>/sae.safetensors`, what sparsify's
  `SparseCoder.load_from_hub(repo_id, hookpoint=sae_id)` downloads.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from snce_lib.io import atomic_write_text, read_json
from snce_lib.sae.model import CHECKPOINT_KIND, CheckpointError, TopKSAE, fingerprint

FILES = ("sae.safetensors", "cfg.json", "metrics.json", "README.md", "sae_weights.safetensors")
FORMATS = ("snce", "saelens", "sparsify")
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


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
    from snce_lib.sae import interop

    folder = Path(folder)
    fmt = checkpoint_format(folder)
    if fmt == "snce":
        return TopKSAE.load(folder, device=device)
    sae = interop.from_saelens(folder) if fmt == "saelens" else interop.from_sparsify(folder)
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
                "# or, with snce:", "from snce_lib.sae.model import TopKSAE",
                f'sae = TopKSAE.from_pretrained("{repo}", subfolder="{sae_id}")']  # fmt: skip
    if format == "sparsify":
        return ["from sparsify import SparseCoder", f'sae = SparseCoder.load_from_hub("{repo}", hookpoint="{sae_id}")',
                "# or, with snce:", "from snce_lib.sae.model import TopKSAE",
                f'sae = TopKSAE.from_pretrained("{repo}", subfolder="{sae_id}")']  # fmt: skip
    return ["from snce_lib.sae.model import TopKSAE", f'sae = TopKSAE.from_pretrained("{repo}")']


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
        f"features of block `{c.layer or 'not recorded'}` (index {c.layer_index}) of the text encoder "
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
    folder = sae.save(folder)
    atomic_write_text(folder / "README.md", model_card(sae, repo_id))
    return folder


def default_sae_id(sae: TopKSAE) -> str:
    """The folder an SAE gets in a SAELens or sparsify repository: its block's module path."""
    return sae.cfg.layer or (f"layer_{sae.cfg.layer_index}" if sae.cfg.layer_index >= 0 else "sae")


def write_layout(sae: TopKSAE, folder: str | os.PathLike, repo_id: str = "", format: str = "snce",
                 sae_id: str | None = None) -> Path:  # fmt: skip
    """What `push_to_hub` uploads, written to `folder`: the checkpoint in `format` and the card."""
    from snce_lib.sae import interop

    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {format!r}")
    folder = Path(folder)
    if format == "snce":
        return save_pretrained(sae, folder, repo_id)
    sae_id = sae_id or default_sae_id(sae)
    if not sae_id or sae_id.startswith(("/", ".")) or ".." in Path(sae_id).parts:
        raise ValueError(f"sae_id must be a relative folder name inside the repository, not {sae_id!r}")
    if format == "saelens":
        interop.to_saelens(sae, folder / sae_id)
    else:
        interop.to_sparsify(sae, folder / sae_id)
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
