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


#: Unlit padding runs at least this long are drawn as one grey cell ("[PAD] x 40"); lit padding
#: positions are drawn one by one, shaded like any token.
PAD_RUN = 3


def example_html(tokens: Sequence[str], n_pad: int, acts: dict[int, float], vmax: float, peak: int = -1) -> str:
    """One prompt as the encoder reads it: its tokens (the end token among them) and its padding,
    every position shaded by the feature's activation there (`acts`: position -> activation, the
    positions counted from the first after BOS). Padding is a narrow cell a position; a run of
    unlit padding is one grey cell that says how long it is. The peak position is outlined."""
    vmax = vmax if vmax > 0 else 1.0

    def cell(j: int, text: str, pad: bool) -> str:
        a = float(acts.get(j, 0.0))
        alpha = 0.0 if a <= 0 else min(1.0, a / vmax)
        ring = "outline:2px solid #b00;" if j == peak else ""
        what = "padding" if pad else html.escape(text)
        style = f"background:rgba(255,80,0,{alpha:.2f});{ring}border-radius:3px;"
        style += (
            "display:inline-block;width:7px;height:1em;vertical-align:middle;margin:0 1px" if pad else "padding:1px 2px"
        )
        body = "" if pad else html.escape(text)
        return f'<span class="snce-tok{" snce-pad" if pad else ""}" title="{j + 1} {what}: {a:.3f}" style="{style}">{body}</span>'

    out = [cell(j, t, False) for j, t in enumerate(tokens)]
    j, end = len(tokens), len(tokens) + n_pad
    while j < end:
        run = j
        while run < end and acts.get(run, 0.0) <= 0:
            run += 1
        if run - j >= PAD_RUN:
            out.append(f'<span class="snce-padrun" title="positions {j + 1}-{run}: padding, silent" '
                       f'style="color:#999;font-size:11px">[PAD]&times;{run - j}</span>')  # fmt: skip
            j = run
            continue
        out.append(cell(j, "", True))
        j += 1
    return " ".join(out)


def density_svg(density: dict, width: int = 320, height: int = 110) -> str:
    """The activation-density histogram as an inline SVG: positions where the feature fires, by
    activation (x, linear) on a log axis of counts (y: 1, 10, 100, ...), stacked by the kind of
    position (content, function word, end or padding), so a weak padding tail under a strong word
    peak shows as what it is."""
    counts = {k: np.asarray(v, dtype=float) for k, v in density["counts"].items()}
    if not counts or sum(c.sum() for c in counts.values()) == 0:
        return "<i>never fires on this sample</i>"
    total = sum(counts.values())
    top = max(1.0, float(np.log10(total.max())) + 0.2)
    bins, lo, hi = density["bins"], density["lo"], density["hi"]
    pw, ph, left, bottom = width - 40, height - 34, 34, height - 20
    bw = pw / bins
    parts = [f'<svg class="snce-density" width="{width}" height="{height}" role="img">',
             '<title>activation density: positions by activation, log count</title>']  # fmt: skip
    for e in range(int(np.floor(top)) + 1):  # gridlines at 1, 10, 100, ...
        y = bottom - ph * e / top
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
                     f'<text x="{left - 3}" y="{y + 3:.1f}" font-size="9" text-anchor="end">{10**e:g}</text>')  # fmt: skip
    for j in range(bins):  # each bar's height is log10(1 + count), split in proportion to its kinds
        if total[j] <= 0:
            continue
        h = ph * np.log10(1 + total[j]) / top
        y = bottom - h
        for k in DENSITY_KINDS:
            share = counts.get(k, np.zeros(bins))[j] / total[j]
            if share <= 0:
                continue
            parts.append(f'<rect x="{left + j * bw:.1f}" y="{y:.1f}" width="{max(bw - 1, 1):.1f}" '
                         f'height="{h * share:.1f}" fill="{KIND_COLOUR[k]}"><title>{k}: {int(counts[k][j])} '
                         f'positions at {lo + j * (hi - lo) / bins:.2f}-{lo + (j + 1) * (hi - lo) / bins:.2f}</title></rect>')  # fmt: skip
            y += h * share
    parts.append(f'<text x="{left}" y="{height - 4}" font-size="9">{lo:.2f}</text>'
                 f'<text x="{left + pw}" y="{height - 4}" font-size="9" text-anchor="end">{hi:.2f}</text>'
                 f'<text x="{left + pw / 2}" y="{height - 4}" font-size="9" text-anchor="middle">activation (SAE units)</text>'
                 f'<text x="9" y="{bottom - ph / 2}" font-size="9" text-anchor="middle" '
                 f'transform="rotate(-90 9 {bottom - ph / 2})">positions (log)</text>')  # fmt: skip
    legend = " ".join(f'<span style="color:{KIND_COLOUR[k]}">&#9632;</span> {KIND_NAME[k]}' for k in DENSITY_KINDS)
    return "".join(parts) + f"</svg><div style='font-size:11px'>{legend}</div>"


#: The histogram's colours and names per kind of position.
DENSITY_KINDS = ("content", "function", "end_pad")
KIND_COLOUR = {"content": "#e8590c", "function": "#1c7ed6", "end_pad": "#868e96"}
KIND_NAME = {"content": "content words", "function": "function words", "end_pad": "end token and padding"}


def feature_card(atlas: Atlas, feature: int, n: int = 8, labels=None, draws: str | None = None) -> dict:
    """A feature's page as HTML, in the order a Neuronpedia reader expects: the label with its
    held-out score and kind; an activation-density histogram on a log axis; the top prompts, then
    prompts from each quantile band of its peaks (every position shaded, the end token and padding
    included, since SD reads all 77); the features that co-fire with it; the tokens of the
    encoder's vocabulary that light it alone (when the atlas has them, `explore` computes them);
    and a slot, "what it draws", for an image strip (`draws`: HTML placed there as it is; none by
    default). The numbers come from `profile.feature_profile`."""
    from snce_lib.atlas.profile import feature_profile

    if not 0 <= feature < atlas.n_latents:
        raise ValueError(f"feature must be in 0..{atlas.n_latents - 1}, got {feature}")
    prof = feature_profile(atlas, feature, labels, n_top=n)
    ex = top_examples(atlas.codes, feature, 1, token_string=atlas.token)
    named = html.escape(with_label(feature, labels)) if labels else f"feature {feature}"
    head = (
        f"<h4>{named}: fires on {atlas.frequency[feature]:.3%} of positions; "
        f"top token: {html.escape(str(ex[0]['token'])) if ex else '-'}</h4>"
    )
    body = [f"<div class='snce-card' data-feature='{feature}'>", _label_line(prof)]
    if prof["top"]:
        body.append(f"<div><b>Activation density</b> ({prof['density']['firings']:,} firing positions)</div>"
                    + density_svg(prof["density"]))  # fmt: skip
        vmax = prof["top"][0]["peak"]
        body.append("<div><b>Top activations</b> (each prompt's peak, strongest first)</div>")
        body += [_example_row(atlas, e, vmax) for e in prof["top"]]
        for band in prof["quantiles"]:
            body.append(f"<div><b>Quantile {band['band']}</b> of the {prof['prompts']:,} prompts it fires in "
                        f"(peaks {band['lo']:.2f}-{band['hi']:.2f})</div>")  # fmt: skip
            body += [_example_row(atlas, e, vmax) for e in band["examples"]]
        body.append(_cofire_html(prof, labels))
    else:
        body.append("<i>never fires on this sample</i>")
    body.append(_vocab_html(prof))  # shown either way: it may name words the sample lacks
    body.append(f"<div class='snce-draws'>{draws}</div>" if draws else "")  # the "what it draws" strip goes here
    body.append("</div>")
    acts = atlas.codes.activation([feature])[atlas.codes.mask()]
    return {
        "feature": feature,
        "frequency": float(atlas.frequency[feature]),
        "html": head + "".join(body),
        "activations": acts[acts > 0].numpy(),
        "top": [
            {k: v for k, v in e.items() if k != "per_position"}
            for e in top_examples(atlas.codes, feature, n, token_string=atlas.token)
        ],  # fmt: skip
        "profile": prof,
    }


def _label_line(prof: dict) -> str:
    lab = prof["label"]
    if lab is None:
        return "<div><i>no label (pass labels=)</i></div>"
    score = "none" if lab["score"] is None else f"{lab['score']:.2f}"
    trig = f"; fires hardest on <b>{html.escape(lab['trigger'])}</b>" if lab["trigger"] else ""
    return (f"<div class='snce-label'>label <b>{html.escape(lab['label'])}</b>: F1 {score} on "
            f"{lab['held_out']:,} held-out prompts (as a detector of where it is strong); "
            f"{html.escape(lab['kind'].replace('_', '/'))} feature{trig}</div>")  # fmt: skip


def _example_row(atlas: Atlas, e: dict, vmax: float) -> str:
    tokens, n_pad = prompt_tokens(atlas, e["prompt"])
    return (f"<div style='margin:2px 0;line-height:1.7'><b>{e['peak']:.2f}</b> &nbsp; "
            f"{example_html(tokens, n_pad, e['acts'], vmax, e['position'])}</div>")  # fmt: skip


def _cofire_html(prof: dict, labels) -> str:
    rows = prof["cofire"]
    if not rows:
        return "<div><b>Co-fires with</b>: <i>no other feature at the same word positions</i></div>"
    items = [f"#{g} {html.escape(labels[g].label) if labels else ''} ({share:.0%}; Jaccard {jac:.2f})"
             for g, jac, share in rows]  # fmt: skip
    return ("<div><b>Co-fires with</b> (on words and the end token; share of its firings where the other "
            "fires too, ranked by Jaccard): " + "; ".join(items) + "</div>")  # fmt: skip


def _vocab_html(prof: dict) -> str:
    vocab = prof["vocab"]
    if vocab is None:
        return "<div><b>Vocabulary alone</b>: <i>not computed for this atlas (explore computes it)</i></div>"
    if not vocab:
        return "<div><b>Vocabulary alone</b>: <i>no single token lights it</i></div>"
    items = ", ".join(f"{html.escape(t)} ({a:.2f})" for t, a in vocab)
    return f"<div><b>Vocabulary alone</b> (each token of the encoder as a one-word prompt): {items}</div>"


def prompt_tokens(atlas: Atlas, prompt: int) -> tuple[list[str], int]:
    """A prompt's tokens after BOS as a reader writes them (the end token included) and its padding count."""
    codes = atlas.codes
    real = codes.real[prompt]
    return [clean(atlas.token(t)) for t in codes.token_ids[prompt][real].tolist()], int(codes.pad[prompt].sum())


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
