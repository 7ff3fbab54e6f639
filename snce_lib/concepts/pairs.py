"""Concepts as data: concept/deconcept prompt pairs and the concept's word tuple (package data
`concepts/NAME_pairs.csv` + `NAME_tuple.txt`, or a pairs CSV of your own)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from snce_lib.prompts import PromptFileError, read_table, require_columns
from snce_lib.resources import data_path


class SelectionError(ValueError):
    """A selection that cannot be made or used: unknown concept, bound to another SAE, no candidate."""


@dataclass
class ConceptPairs:
    name: str
    concept_prompts: list[str]
    deconcept_prompts: list[str]
    tuple_words: list[str] = field(default_factory=list)

    @property
    def tuple_prompt(self) -> str:
        return ", ".join(self.tuple_words)


def known_concepts() -> list[str]:
    return sorted(p.name[: -len("_pairs.csv")] for p in data_path("concepts").glob("*_pairs.csv"))


def load_concept(spec: str | os.PathLike) -> ConceptPairs:
    """A concept by name (package data: concepts/NAME_pairs.csv + NAME_tuple.txt) or a pairs CSV path.

    A pairs CSV has columns `concept_prompt,deconcept_prompt`; RECE's Ring-A-Bell-style file
    (`sensitive prompt`, `normal prompt`) is read too. A tuple file beside it is optional.
    """
    path = Path(spec)
    if not path.suffix:
        path = data_path("concepts", f"{spec}_pairs.csv")
        if not path.exists():
            raise SelectionError(f"unknown concept {spec!r}; known: {', '.join(known_concepts())}, or give a pairs CSV")
    df = read_table(path)
    cols = ("concept_prompt", "deconcept_prompt")
    if "sensitive prompt" in df.columns and "normal prompt" in df.columns:
        df = df.rename(columns={"sensitive prompt": cols[0], "normal prompt": cols[1]})
    require_columns(df, cols, path)
    df = df.dropna(subset=list(cols))
    if df.empty:
        raise PromptFileError(f"{path} holds no concept pairs")
    name = path.name[: -len("_pairs.csv")] if path.name.endswith("_pairs.csv") else path.stem
    tfile = path.with_name(f"{name}_tuple.txt")
    words = [w.strip() for w in tfile.read_text().split(",") if w.strip()] if tfile.exists() else []
    return ConceptPairs(name, df[cols[0]].astype(str).tolist(), df[cols[1]].astype(str).tolist(), words)
