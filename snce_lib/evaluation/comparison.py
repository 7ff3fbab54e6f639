"""The erasure methods compared side by side: `concept_methods` builds every method of `concepts.methods`
for one concept (its pairs, the SAE, each method at its lambdas) as `Entry` rows to run;
`world_methods` does so for a toy-world target (a colour or a shape).

What runs them lives beside: `image_rows` (the toy worlds: images and an exact detector),
`offline_rows` (the offline encoder: no images, probes and the held-out check); what reads their
tables: `methods_table` (loading, labels, the headline lines) and `figures` (the comparison plot).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from snce_lib.concepts.codes import prompt_codes
from snce_lib.concepts.erase import Eraser
from snce_lib.concepts.leakage import POSITIONS, position_mask
from snce_lib.concepts.methods import (
    BlockMap,
    ConceptSteerer,
    NegativePrompt,
    WordRemoval,
    latent_family,
    leace_map,
    probe_direction,
    probe_projection,
)
from snce_lib.concepts.pairs import SelectionError
from snce_lib.concepts.selection import select_neurons
from snce_lib.evaluation.toy import toy_concept


@dataclass
class Entry:
    method: str
    lam: float | None
    top_k: int | None
    obj: object | None
    neurons: list[int] | None = None
    tolerance: float | None = None
    note: str | None = None
    """Set when there is nothing to run (no `obj`: the row records the reason and no measurements), or
    when a row runs on less than it asked for (ItD with fewer features than 16: it says so)."""

    def record(self) -> dict:
        """What every row also records: the latents edited (None: the method edits none), the
        deconcept tolerance s^d their selection used (None: not a frequency selection), the note."""
        neurons = self.neurons if self.neurons is not None else getattr(self.obj, "neurons", None)
        return {"neurons": None if neurons is None else [int(i) for i in neurons],
                "deconcept_tolerance": self.tolerance, "note": self.note}  # fmt: skip


def select_at(enc, sae, pairs, top_k: int, share: float) -> list[int] | None:
    """SNCE's `top_k` neurons under the deconcept tolerance `share` exactly (0: the paper's strict
    filter), or None where fewer than `top_k` latents pass it. No fallback: a row labelled with a
    tolerance used that tolerance."""
    try:
        sel = select_neurons(enc, sae, pairs, top_k=top_k, max_deconcept_share=share)[0]
    except SelectionError:
        return None
    return list(sel.neurons) if len(sel.neurons) == top_k else None


def select_cover(enc, sae, pairs, share: float) -> list[int]:
    """SNCE's filter at tolerance `share`, then the cover (`ranking.rank_cover`): the smallest greedy set
    of passing latents that together fire in every concept prompt they can. [] when none passes."""
    try:
        _, details = select_neurons(enc, sae, pairs, top_k=1, method="cover", max_deconcept_share=share)
    except SelectionError:
        return []
    ranking = details["ranking"]
    return ranking.top(len(ranking))


def _snce_entries(sae, name: str, lams, top_k: int, share: float, neurons, mode: str = "B", tup: str = ""):
    """One entry per lambda, or one entry that says the filter left too few latents."""
    if neurons is None:
        why = f"fewer than {top_k} latent(s) pass the deconcept filter s^d <= {share:g}"
        return [Entry(name, None, top_k, None, None, share, why)]
    return [Entry(name, lam, top_k, Eraser(sae, neurons, lam, mode, tup), list(neurons), share) for lam in lams]


def _token_features(enc, sae, prompts: Sequence[str], positions: str = POSITIONS) -> torch.Tensor:
    """The block's token features at the positions the edit is applied to (after BOS; "all":
    padding included, as `BlockMap` edits and the UNet reads them). [positions, width]"""
    toks = enc.tokenize(list(prompts))
    h = enc.run_to_block(toks, sae.cfg.layer or None)
    return h[position_mask(toks.attention_mask, positions, enc.start).bool()].float()


def world_methods(enc, sae, target: str, lams: dict[str, Sequence[float]] | None = None) -> list[Entry]:
    """The comparison's methods for a toy-world `target` (a colour or a shape), from its concept pairs."""
    return concept_methods(enc, sae, toy_concept(target), lams)


def concept_methods(enc, sae, pairs, lams: dict[str, Sequence[float]] | None = None,
                    positions: str = POSITIONS) -> list[Entry]:  # fmt: skip
    """The comparison's methods for a concept (`ConceptPairs`), each at its lambdas. LEACE and the probe
    are fitted on the block's token features of the concept pairs (concept prompts 1, deconcept
    prompts 0) at `positions` after BOS: by default every one, padding included, where they are
    applied. Word removal deletes the tuple's words, not held-out synonyms (it cannot know them).
    SNCE rows use exactly the tolerance their name gives; where it leaves too few latents the entry
    says so (`Entry.note`) and is not run."""
    lams = {"snce": (1.0, 4.0), "topk": (1.0, 2.0), "family": (1.0, 2.0), "steer": (1.0, 2.0), **(lams or {})}
    tup = ", ".join(pairs.tuple_words)
    out: list[Entry] = []
    strict, tol = select_at(enc, sae, pairs, 1, 0.0), select_at(enc, sae, pairs, 1, 0.01)
    for mode in ("A", "B"):
        out += _snce_entries(sae, f"snce top-1 strict, mode {mode}", lams["snce"], 1, 0.0, strict, mode, tup)
    out += _snce_entries(sae, "snce top-1 tol 1%, mode B", lams["snce"], 1, 0.01, tol)
    for k in (10, 20):
        out += _snce_entries(
            sae, f"snce top-{k} tol 1%, mode B", lams["topk"], k, 0.01, select_at(enc, sae, pairs, k, 0.01)
        )
    fam = latent_family(prompt_codes(enc, sae, pairs.concept_prompts), prompt_codes(enc, sae, pairs.deconcept_prompts))
    if fam:
        out += [Entry("latent family, mode B", lam, len(fam), Eraser(sae, fam, lam, "B")) for lam in lams["family"]]
    else:
        out.append(Entry("latent family, mode B", None, None, None, None, None,
                         "no latent fires in half of the concept prompts and at most 1% of the others"))  # fmt: skip
    cover = select_cover(enc, sae, pairs, 0.01)
    if cover:
        out += [Entry("snce cover tol 1%, mode B", lam, len(cover), Eraser(sae, cover, lam, "B"), cover, 0.01)
                for lam in lams["family"]]  # fmt: skip
    else:
        out.append(Entry("snce cover tol 1%, mode B", None, None, None, None, 0.01, "no latent passes the 1% filter"))
    out += [Entry("concept steerers", lam, None, ConceptSteerer(sae, tup, lam)) for lam in lams["steer"]]
    try:
        itd = [int(i) for i in select_neurons(enc, sae, pairs, top_k=1, method="itd")[1]["ranking"].top(16)]
    except SelectionError as exc:
        out.append(Entry("interpret-then-deactivate", None, None, None, None, None, str(exc).split(";")[0]))
    else:
        short = f"asked for 16 features, {len(itd)} pass ItD's contrast" if len(itd) < 16 else None
        out.append(Entry("interpret-then-deactivate", 1.0, len(itd), Eraser(sae, itd, 1.0, "B"), itd, None, short))
    x_c = _token_features(enc, sae, pairs.concept_prompts, positions)
    x_o = _token_features(enc, sae, pairs.deconcept_prompts, positions)
    x, y = torch.cat([x_c, x_o]), torch.cat([torch.ones(len(x_c)), torch.zeros(len(x_o))]).long()
    out.append(Entry("leace", None, None, BlockMap("leace", leace_map(x, y), sae.cfg.layer or None)))
    out.append(Entry("probe projection", None, None, BlockMap("probe", probe_projection(probe_direction(x, y)),
                                                                sae.cfg.layer or None)))  # fmt: skip
    out.append(Entry("negative prompt", None, None, NegativePrompt(tup)))
    out.append(Entry("word removal (oracle)", None, None, WordRemoval(pairs.tuple_words)))
    return out
