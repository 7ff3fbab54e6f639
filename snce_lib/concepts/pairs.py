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


def mention(concept_prompt: str, deconcept_prompt: str) -> tuple[str, ...]:
    """The words a concept prompt adds to its twin ("a photo of a naked woman" / "a photo of a woman"
    -> ("naked",)): the concept prompt's words, in order, less one of each word the twin holds."""
    import re
    from collections import Counter

    def words(s: str) -> list[str]:
        return re.findall(r"[\w'-]+", s.lower())

    left = Counter(words(deconcept_prompt))
    out = []
    for w in words(concept_prompt):
        if left[w] > 0:
            left[w] -= 1
        else:
            out.append(w)
    return tuple(out)


def mention_groups(pairs: ConceptPairs) -> list[int]:
    """A group id per pair: pairs whose mentions share a content word ("naked" and "completely naked",
    "with bare breasts" and "with exposed breasts") are one group, joined transitively. A split that
    keeps each group on one side puts no phrasing, and no concept word, on both sides."""
    from snce_lib.concepts.positions import FUNCTION_WORDS

    parent: dict[str, str] = {}

    def find(w: str) -> str:
        while parent.setdefault(w, w) != w:
            parent[w] = parent[parent[w]]
            w = parent[w]
        return w

    keys = []
    for c, d in zip(pairs.concept_prompts, pairs.deconcept_prompts):
        m = mention(c, d)
        content = [w for w in m if w not in FUNCTION_WORDS] or list(m) or [f"<same words: {c}>"]
        for w in content[1:]:
            parent[find(w)] = find(content[0])
        keys.append(content[0])
    roots = [find(k) for k in keys]
    ids = {r: i for i, r in enumerate(dict.fromkeys(roots))}
    return [ids[r] for r in roots]
