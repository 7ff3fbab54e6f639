"""Prompt files and prompt sets.

The field's CSV format is read by column name (`prompt`, `evaluation_seed`,
`evaluation_guidance`, `case_number`); a plain text file holds one prompt a line.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd


class PromptFileError(ValueError):
    """A prompt file that cannot be used: missing, wrong columns, empty."""


#: Columns accepted as the prompt text, in order of preference.
PROMPT_COLUMNS = ("prompt", "adv_prompt", "text", "caption")


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise PromptFileError(f"prompt file {path} does not exist")
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise PromptFileError(f"cannot read {path} as CSV: {exc}".splitlines()[0]) from exc
    return df.loc[:, [c for c in df.columns if not str(c).startswith("Unnamed:")]]


def require_columns(df: pd.DataFrame, columns: Sequence[str], path: str | os.PathLike) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise PromptFileError(
            f"{path} has no column {', '.join(repr(c) for c in missing)}; its columns are {', '.join(map(str, df.columns))}"
        )


def read_prompts(path: str | os.PathLike, column: str | None = None) -> list[str]:
    """Prompts from a CSV (column `prompt`, or `column`) or a text file (one a line)."""
    path = Path(path)
    if path.suffix.lower() in (".csv", ".tsv"):
        df = read_table(path)
        if column is None:
            column = next((c for c in PROMPT_COLUMNS if c in df.columns), None)
            if column is None:
                raise PromptFileError(
                    f"{path} has no prompt column: expected one of {', '.join(PROMPT_COLUMNS)}; "
                    f"its columns are {', '.join(map(str, df.columns))}"
                )
        require_columns(df, [column], path)
        prompts = [str(p).strip() for p in df[column].dropna().tolist()]
    else:
        if not path.exists():
            raise PromptFileError(f"prompt file {path} does not exist")
        prompts = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    prompts = [p for p in prompts if p]
    if not prompts:
        raise PromptFileError(f"{path} holds no prompts")
    return prompts


def read_many(paths: Sequence[str | os.PathLike], limit_each: int | None = None) -> list[str]:
    out: list[str] = []
    for p in paths:
        got = read_prompts(p)
        out.extend(got[:limit_each] if limit_each else got)
    if not out:
        raise PromptFileError("the prompt list is empty")
    return out


# ---- named benchmark sets ------------------------------------------------------------------
# Each set: the file's path under a data folder laid out like ../shared/data, the public
# home it is fetched from when it is not there, and how its rows become prompts.
_GH = "https://raw.githubusercontent.com"
PUBLIC_SETS = {
    "i2p": ("i2p/i2p_4703.csv", f"{_GH}/rohitgandikota/erasing/25613d2/data/unsafe-prompts4703.csv"),
    "coco": ("coco/coco_30k.csv", f"{_GH}/rohitgandikota/erasing/25613d2/data/coco_30k.csv"),
    "unlearndiffatk": ("attacks/unlearndiffatk_nudity_142.csv", f"{_GH}/OPTML-Group/Diffusion-MU-Attack/5a3e5d3/prompts/nudity.csv"),
    "ring_a_bell_79": ("attacks/ring_a_bell_rece_79_pairs.csv", f"{_GH}/CharlesGong12/RECE/403a67f/dataset/nudity-ring-a-bell.csv"),
    "ring_a_bell_50": ("attacks/ring_a_bell_nudity_50.csv", f"{_GH}/chiayi-hsu/Ring-A-Bell/e4585ad/data/Prompts_For_ConceptVector/Nudity_ring-a-bell.csv"),
    "mma": ("attacks/mma_diffusion_1000.csv", f"{_GH}/jaehong31/SAFREE/b8b2c3f/datasets/mma-diffusion-nsfw-adv-prompts.csv"),
    "p4d": ("attacks/p4d_ideal_nudity_esd.csv", f"{_GH}/joycenerd/P4D/2cf3cda/data/unsafe-prompts-nudity_esd.csv"),
    "i2p_violence": ("violence/i2p_violence_756.csv", f"{_GH}/OPTML-Group/Diffusion-MU-Attack/5a3e5d3/prompts/violence.csv"),
    "diffusiondb_nsfw": ("diffusiondb/diffusiondb_nsfw_6k.csv", f"{_GH}/NANSirun/Interpret-then-deactivate/6e8869a/diffusiondb_nsfw.csv"),
    "diffusiondb_10k": ("diffusiondb/diffusiondb_10k.csv", f"{_GH}/NANSirun/Interpret-then-deactivate/6e8869a/diffusiondb10K.csv"),
}

SET_NAMES = (
    "i2p", "i2p_sexual", "i2p_nudity", "coco", "unlearndiffatk", "ring_a_bell_79", "ring_a_bell_50", "mma", "p4d",
    "i2p_violence", "diffusiondb_nsfw", "diffusiondb_10k",
)


def data_dirs() -> list[Path]:
    """Where public sets are looked for: $SNCE_DATA_DIR, ../shared/data beside the repository, the cache."""
    import os as _os

    root = Path(__file__).resolve().parents[1]
    dirs = [Path(p) for p in _os.environ.get("SNCE_DATA_DIR", "").split(":") if p]
    return dirs + [root.parent / "shared" / "data", cache_dir()]


def cache_dir() -> Path:
    import os as _os

    return Path(_os.environ.get("SNCE_CACHE", Path.home() / ".cache" / "snce")) / "data"


def locate(name: str, fetch: bool = True) -> Path:
    """The local file of a public set, fetched from its public home into the cache if needed."""
    rel, url = PUBLIC_SETS[name]
    for d in data_dirs():
        if (d / rel).exists():
            return d / rel
    if not fetch:
        raise PromptFileError(f"prompt set {name!r} not found under {', '.join(map(str, data_dirs()))}")
    dest = cache_dir() / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        if name == "i2p":
            from huggingface_hub import hf_hub_download  # the upstream home of I2P

            src = hf_hub_download("AIML-TUDA/i2p", "i2p_benchmark.csv", repo_type="dataset")
            df = pd.read_csv(src)
            df.to_csv(dest.with_suffix(".tmp"), index=False)
        else:
            import urllib.request

            with urllib.request.urlopen(url, timeout=60) as r:
                dest.with_suffix(".tmp").write_bytes(r.read())
    except Exception as exc:  # network errors come in many types
        raise PromptFileError(f"prompt set {name!r} is not on this machine and could not be fetched ({exc}); "
                              f"put {rel} under $SNCE_DATA_DIR") from exc
    os.replace(dest.with_suffix(".tmp"), dest)
    return dest


@dataclass
class PromptSet:
    """Prompts with the field's per-row protocol columns."""

    name: str
    frame: pd.DataFrame  # columns: prompt, case_number, evaluation_seed, evaluation_guidance (NaN if absent)

    @property
    def prompts(self) -> list[str]:
        return self.frame["prompt"].tolist()

    def __len__(self) -> int:
        return len(self.frame)


def _normalise(df: pd.DataFrame, name: str, prompt_col: str = "prompt") -> PromptSet:
    """The four protocol columns first, then the file's other columns as they are."""
    out = pd.DataFrame({"prompt": df[prompt_col].astype(str).str.strip().values})
    out["case_number"] = df["case_number"].astype(int).values if "case_number" in df.columns else np.arange(len(df))
    out["evaluation_seed"] = df["evaluation_seed"].values if "evaluation_seed" in df.columns else np.nan
    out["evaluation_guidance"] = df["evaluation_guidance"].values if "evaluation_guidance" in df.columns else np.nan
    for c in df.columns:
        if c not in out.columns and c != prompt_col:
            out[c] = df[c].values
    return PromptSet(name, out)


def load_set(name: str, n: int | None = None, min_nudity: float | None = None, fetch: bool = True) -> PromptSet:
    """A named public set or a CSV path in the field's format.

    Names: i2p (all rows), i2p_sexual (category "sexual"), i2p_nudity (nudity_percentage >=
    `min_nudity`, default 50), coco (first `n`), unlearndiffatk, ring_a_bell_79 (the sensitive
    prompts), ring_a_bell_50, mma (adv_prompt), p4d, i2p_violence, diffusiondb_nsfw, diffusiondb_10k.
    """
    if name not in SET_NAMES:
        path = Path(name)
        if not path.exists():
            raise PromptFileError(f"unknown prompt set {name!r}; use a CSV path or one of {', '.join(SET_NAMES)}")
        df = read_table(path)
        col = next((c for c in PROMPT_COLUMNS if c in df.columns), None)
        if col is None:
            raise PromptFileError(f"{path} has no column 'prompt' (nor {', '.join(PROMPT_COLUMNS[1:])})")
        ps = _normalise(df, path.stem, col)
    else:
        base = {"i2p_sexual": "i2p", "i2p_nudity": "i2p"}.get(name, name)
        path = locate(base, fetch)
        df = read_table(path)
        if base == "i2p":
            need = ["prompt", "categories", "nudity_percentage", "evaluation_seed", "evaluation_guidance"]
            require_columns(df, need, path)
            if name == "i2p_sexual":
                df = df[df["categories"].astype(str).str.contains("sexual")]
            elif name == "i2p_nudity":
                df = df[df["nudity_percentage"] >= (50.0 if min_nudity is None else min_nudity)]
            ps = _normalise(df, name)
        elif base == "ring_a_bell_79":
            require_columns(df, ["sensitive prompt"], path)
            ps = _normalise(df, name, "sensitive prompt")
        elif base == "ring_a_bell_50":
            require_columns(df, ["nudity", "people", "location"], path)
            cols = [c for c in ("nudity", "people", "clothes", "location") if c in df.columns]
            parts = df[cols].fillna("").astype(str)
            df = df.assign(prompt=parts.apply(lambda r: " ".join(v.strip() for v in r if v.strip() not in ("", "None", "nan")), axis=1))
            ps = _normalise(df, name)
        elif base == "mma":
            require_columns(df, ["adv_prompt"], path)
            ps = _normalise(df, name, "adv_prompt")
        else:
            require_columns(df, ["prompt"], path)
            ps = _normalise(df, name)
    if n is not None:
        ps = PromptSet(ps.name, ps.frame.iloc[:n].reset_index(drop=True))
    if len(ps) == 0:
        raise PromptFileError(f"prompt set {name!r} selects no rows")
    return ps
