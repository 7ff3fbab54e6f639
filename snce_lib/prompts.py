"""Prompt files and prompt sets.

The field's CSV format is read by column name (`prompt`, `evaluation_seed`,
`evaluation_guidance`, `case_number`); a plain text file holds one prompt a line.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

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
