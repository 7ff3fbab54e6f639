"""Prompt files and prompt sets.

The field's CSV format is read by column name (`prompt`, `evaluation_seed`,
`evaluation_guidance`, `case_number`); a plain text file holds one prompt a line.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

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
    if path.is_dir():
        raise PromptFileError(f"prompt file {path} is a folder; give a .csv file")
    try:
        df = pd.read_csv(path)
    except UnicodeDecodeError:
        raise PromptFileError(f"{path} is not UTF-8 text; save it as UTF-8") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
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
        try:
            prompts = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        except UnicodeDecodeError:
            raise PromptFileError(f"prompt file {path} is not UTF-8 text; save it as UTF-8") from None
        except IsADirectoryError:
            raise PromptFileError(f"prompt file {path} is a folder; give a .csv or .txt file") from None
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
# Each set: its path under a data folder laid out like the project's shared data, and its
# public home (raw file at a pinned commit). Every path and header below was checked against
# the upstream repository at that commit; tests/fixtures/sets/ keeps a few rows of each with
# the real header. The MMA-Diffusion file could not be checked that way (no stored copy of
# its repository at hand); its header is checked against the shared copy only.
_GH = "https://raw.githubusercontent.com"
_ERASING = f"{_GH}/rohitgandikota/erasing/3d10dd1b2df4ec4e74edcadac4200c7401585138"
_MU_ATTACK = f"{_GH}/OPTML-Group/Diffusion-MU-Attack/0eea64d54c96b9c7a7cdf21682eac5bb32d9467b"
_ITD = f"{_GH}/NANSirun/Interpret-then-deactivate/a56632ad91355bf756c3385b994f7e23ef8a9e4f"
PUBLIC_SETS = {
    "i2p": ("i2p/i2p_4703.csv", f"{_ERASING}/data/unsafe-prompts4703.csv"),
    "coco": ("coco/coco_30k.csv", f"{_ERASING}/data/coco_30k.csv"),
    "unlearndiffatk": ("attacks/unlearndiffatk_nudity_142.csv", f"{_MU_ATTACK}/prompts/nudity.csv"),
    "ring_a_bell_79": (
        "attacks/ring_a_bell_rece_79_pairs.csv",
        f"{_GH}/CharlesGong12/RECE/10ea80d1eae9383267472954efd053f65123208e/dataset/nudity-ring-a-bell.csv",
    ),
    "ring_a_bell_50": (
        "attacks/ring_a_bell_nudity_50.csv",
        f"{_GH}/chiayi-hsu/Ring-A-Bell/a0469844d29733be6ab53855be5b7fe41948f523/data/Prompts_For_ConceptVector/Nudity_prompt.csv",
    ),
    "mma": (
        "attacks/mma_diffusion_1000.csv",
        f"{_GH}/jaehong31/SAFREE/b8b2c3f/datasets/mma-diffusion-nsfw-adv-prompts.csv",
    ),
    "p4d": (
        "attacks/p4d_ideal_nudity_esd.csv",
        f"{_GH}/joycenerd/P4D/a909a35085ea83a51df899be5387b4e7c6685c63/data/unsafe-prompts-nudity_esd.csv",
    ),
    "i2p_violence": ("violence/i2p_violence_756.csv", f"{_MU_ATTACK}/prompts/violence.csv"),
    "diffusiondb_nsfw": ("diffusiondb/diffusiondb_nsfw_6k.csv", f"{_ITD}/prompt/diffusiondb/diffusiondb_nsfw.csv"),
    "diffusiondb_10k": ("diffusiondb/diffusiondb_10k.csv", f"{_ITD}/prompt/diffusiondb/diffusiondb10K.csv"),
}

#: I2P's own home (the AIML-TUDA/i2p dataset on the hub) names the protocol columns differently.
I2P_HUB_COLUMNS = {"sd_seed": "evaluation_seed", "sd_guidance_scale": "evaluation_guidance"}

SET_NAMES = ("i2p", "i2p_sexual", "i2p_nudity", "coco", "unlearndiffatk", "ring_a_bell_79", "ring_a_bell_50", "mma",
             "p4d", "i2p_violence", "diffusiondb_nsfw", "diffusiondb_10k")  # fmt: skip


def data_dirs() -> list[Path]:
    """Where public sets are looked for: $SNCE_DATA_DIR (colon-separated), ../shared/data seen from the
    working directory or its parent (a checkout's layout), then the download cache."""
    dirs = [Path(p) for p in os.environ.get("SNCE_DATA_DIR", "").split(":") if p]
    here = Path.cwd()
    dirs += [d / "shared" / "data" for d in (here.parent, here.parent.parent)]
    return dirs + [cache_dir()]


def cache_dir() -> Path:
    return Path(os.environ.get("SNCE_CACHE", Path.home() / ".cache" / "snce")) / "data"


def locate(name: str, fetch: bool = True) -> Path:
    """The local file of a public set, fetched from its public home into the cache if needed."""
    rel, url = PUBLIC_SETS[name]
    for d in data_dirs():
        if (d / rel).exists():
            return d / rel
    if not fetch:
        raise PromptFileError(
            f"prompt set {name!r} is not on this machine: looked for {rel} under "
            f"{', '.join(map(str, data_dirs()))}; set SNCE_DATA_DIR to a folder that holds it"
        )
    dest = cache_dir() / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp{os.getpid()}")
    try:
        import urllib.request

        with urllib.request.urlopen(url, timeout=60) as r:
            tmp.write_bytes(r.read())
    except Exception as exc:  # network errors come in many types
        tmp.unlink(missing_ok=True)
        raise PromptFileError(
            f"prompt set {name!r} is not on this machine and could not be fetched from {url} "
            f"({exc}); put {rel} under $SNCE_DATA_DIR"
        ) from exc
    os.replace(tmp, dest)
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
            df = df.rename(columns={k: v for k, v in I2P_HUB_COLUMNS.items() if v not in df.columns})
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
            df = df.assign(
                prompt=parts.apply(
                    lambda r: " ".join(v.strip() for v in r if v.strip() not in ("", "None", "nan")), axis=1
                )
            )
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
