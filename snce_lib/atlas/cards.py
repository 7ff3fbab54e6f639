"""Feature cards and word search over an atlas: what a feature fires on, shown token by token."""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import torch

from snce_lib.atlas.labels import clean, with_label, word_features
from snce_lib.atlas.map import Atlas
from snce_lib.concepts.codes import PromptCodes, prompt_codes


def top_examples(codes: PromptCodes, neuron: int, n: int = 10, token_string=None) -> list[dict]:
    """The prompts on which `neuron` fires hardest, with the firing position and token."""
    best, where = codes.max_activation([neuron])
    per_position = codes.activation([neuron])
    order = np.argsort(-best)[:n]
    out = []
    for i in order:
        if best[i] <= 0:
            break
        tid = int(codes.token_ids[i, where[i] - 1])
        out.append(
            {
                "prompt": codes.prompts[i],
                "activation": float(best[i]),
                "position": int(where[i]),
                "token": token_string(tid) if token_string else tid,
                "per_position": per_position[i].numpy(),
            }
        )
    return out


def token_html(tokens: Sequence[str], acts: Sequence[float], vmax: float | None = None) -> str:
    """Tokens as HTML spans, shaded by activation (the firing tokens stand out)."""
    acts = np.asarray(acts, dtype=float)
    vmax = float(vmax if vmax is not None else (acts.max() if acts.size and acts.max() > 0 else 1.0))
    spans = []
    for t, a in zip(tokens, acts):
        alpha = 0.0 if a <= 0 else min(1.0, a / vmax)
        tip = f"{a:.3f}"
        spans.append(
            f'<span title="{tip}" style="background: rgba(255,80,0,{alpha:.2f}); padding:1px 2px; '
            f'border-radius:3px">{html.escape(t)}</span>'
        )
    return " ".join(spans)


def feature_card(atlas: Atlas, feature: int, n: int = 8, labels=None) -> dict:
    """A feature's top prompts (tokens shaded by activation, as HTML), activation values and frequency;
    with `labels`, its label, the label's score and where it fires in the heading."""
    if not 0 <= feature < atlas.n_latents:
        raise ValueError(f"feature must be in 0..{atlas.n_latents - 1}, got {feature}")
    codes = atlas.codes
    ex = top_examples(codes, feature, n, token_string=atlas.token)
    vmax = max((e["activation"] for e in ex), default=1.0)
    rows = []
    for e in ex:
        i = codes.prompts.index(e["prompt"])
        mask = codes.real[i]
        toks = [clean(atlas.token(t)) for t in codes.token_ids[i][mask].tolist()]
        rows.append(
            f"<div style='margin:2px 0'><b>{e['activation']:.2f}</b> &nbsp; "
            f"{token_html(toks, e['per_position'][mask.numpy()], vmax)}</div>"
        )
    acts = codes.activation([feature])[codes.mask()]
    named = html.escape(with_label(feature, labels)) if labels else f"feature {feature}"
    head = (
        f"<h4>{named}: fires on {atlas.frequency[feature]:.3%} of positions; "
        f"top token: {html.escape(str(ex[0]['token'])) if ex else '-'}</h4>"
    )
    return {
        "feature": feature,
        "frequency": float(atlas.frequency[feature]),
        "html": head + "".join(rows) if rows else head + "<i>never fires on this sample</i>",
        "activations": acts[acts > 0].numpy(),
        "top": [{k: v for k, v in e.items() if k != "per_position"} for e in ex],
    }


def search_features(atlas: Atlas, word: str, n: int = 10) -> list[tuple[int, float]]:
    """[(feature, F1)]: the features the whole word `word` predicts best (`labels.word_features`),
    best first; a word that is not in the sample matches the whole words that contain it."""
    word = word.lower().strip()
    if not word:
        return []
    index = word_features(atlas)
    if word in index:
        return index[word][:n]
    best: dict[int, float] = {}
    for w, hits in index.items():
        if word in w:
            for f, s in hits:
                best[f] = max(best.get(f, 0.0), s)
    return sorted(best.items(), key=lambda x: -x[1])[:n]


def prompt_features(encoder, sae, prompt: str, labels: Sequence | None = None, per_token: int = 3) -> list[dict]:
    """Which features a prompt lights, token by token: for each word position and EOS, the
    `per_token` strongest features (feature, activation, label), strongest first."""
    if not prompt.strip():
        raise ValueError("type a prompt to see the features it lights")
    codes = prompt_codes(encoder, sae, [prompt])
    real = codes.real[0]
    tokens = [clean(t) for t in encoder.token_strings(codes.token_ids[0][real].tolist())]
    rows = []
    for tok, v, i in zip(tokens, codes.values[0][real], codes.indices[0][real]):
        order = torch.argsort(v, descending=True)[:per_token]
        feats = [(int(i[o]), float(v[o]), labels[int(i[o])].label if labels else "") for o in order if v[o] > 0]
        rows.append({"token": tok, "features": feats})
    return rows


def prompt_features_html(rows: list[dict]) -> str:
    """`prompt_features` as a table: a row per token, its strongest features with labels and activations."""
    cells = []
    for r in rows:
        feats = "; ".join(f"<b>{f}</b> {html.escape(lab)} <span style='color:#888'>({a:.2f})</span>"
                          for f, a, lab in r["features"]) or "<i>none</i>"  # fmt: skip
        cells.append(f"<tr><td style='text-align:left'><code>{html.escape(r['token'])}</code></td>"
                     f"<td style='text-align:left'>{feats}</td></tr>")  # fmt: skip
    return "<table><tr><th>token</th><th>strongest features (activation)</th></tr>" + "".join(cells) + "</table>"
