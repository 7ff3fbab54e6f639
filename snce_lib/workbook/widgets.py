"""ipywidgets panels. Each callback is a plain library function, so tests drive them in code.

`feature_browser(atlas)`: pick a feature or search by word; see its top prompts,
activation histogram and frequency. `prompt_lens(encoder, sae, labels, atlas)`: the features a
typed prompt lights, token by token. `erasure_panel(...)`: prompt, lambda, mode, top-k;
images before and after (safe display) and the neuron's activation per token.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np

from snce_lib.atlas.cards import feature_card, search_features, token_html
from snce_lib.atlas.map import Atlas
from snce_lib.evaluation.display import image_grid
from snce_lib.evaluation.draws import one_image


def histogram_png(values: np.ndarray, title: str) -> bytes:
    from matplotlib.figure import Figure  # no pyplot: the notebook's backend is left alone

    fig = Figure(figsize=(4, 2.4))
    ax = fig.add_subplot()
    ax.hist(values, bins=30, color="tab:orange")
    ax.set(title=title, xlabel="activation (SAE units)", ylabel="positions")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def feature_view(atlas: Atlas, feature: int, labels=None) -> dict:
    """What the browser shows for one feature: HTML (headed by its label and the label's score when
    `labels` are given) and a histogram PNG."""
    card = feature_card(atlas, feature, labels=labels)
    acts = card["activations"]
    png = histogram_png(acts if len(acts) else np.zeros(1), f"feature {feature}: activations where it fires")
    return {"html": card["html"], "png": png, "frequency": card["frequency"]}


def search_view(atlas: Atlas, word: str, labels=None) -> tuple[list[tuple[str, int]], str]:
    """Dropdown options (best word detector first, by F1, with labels when given) and a one-line summary."""
    hits = search_features(atlas, word)
    opts = [(f"{f} {labels[f].label if labels else ''} (F1 {a:.2f})".replace("  ", " "), f) for f, a in hits]
    if not hits:
        return opts, f"no feature fires on '{word}' in this sample"
    return opts, f"{len(hits)} features fire on '{word}' (best detector of the word first, by F1)"


def feature_browser(atlas: Atlas, start: int = 0, labels=None):
    import ipywidgets as W

    pick = W.BoundedIntText(value=start, min=0, max=atlas.n_latents - 1, description="feature")
    # continuous_update=False: act on Enter (or leaving the box), not on every keystroke
    word = W.Text(value="", placeholder="search by word, e.g. naked", description="search", continuous_update=False)
    hits = W.Dropdown(options=[], description="matches")
    status = W.HTML()
    card = W.HTML()
    # a fixed size: inside an HBox the image would otherwise stretch to the card's height
    hist = W.Image(format="png", layout=W.Layout(width="400px", height="240px", flex="0 0 auto"))

    def show(feature: int) -> None:
        v = feature_view(atlas, feature, labels)
        card.value, hist.value = v["html"], v["png"]

    def on_word(change) -> None:
        opts, status.value = search_view(atlas, change["new"], labels)
        hits.options = opts
        if opts:
            pick.value = opts[0][1]
        elif change["new"].strip():  # no match: no card of some other feature beside the message
            card.value, hist.value = f"<i>{status.value}</i>", b""

    pick.observe(lambda c: show(c["new"]), names="value")
    word.observe(on_word, names="value")
    hits.observe(lambda c: c["new"] is not None and setattr(pick, "value", c["new"]), names="value")
    show(start)
    box = W.VBox([W.HBox([pick, word, hits]), status, W.HBox([card, hist])])
    box.controls = {"feature": pick, "word": word, "matches": hits, "card": card, "hist": hist, "status": status}
    return box


def prompt_lens(encoder, sae, labels=None, atlas: Atlas | None = None, prompt: str = ""):
    """Type a prompt, press Enter: the features it lights, token by token (with labels); pick one of
    them to open its card when an atlas is given."""
    import ipywidgets as W

    from snce_lib.atlas.cards import prompt_features, prompt_features_html

    text = W.Text(value=prompt, placeholder="type a prompt, then Enter", description="prompt",
                  continuous_update=False, layout=W.Layout(width="60%"))  # fmt: skip
    table, lit, card = W.HTML(), W.Dropdown(options=[], description="open card"), W.HTML()

    def update(*_) -> None:
        if not text.value.strip():
            table.value, lit.options = "<i>type a prompt, then Enter</i>", []
            return
        rows = prompt_features(encoder, sae, text.value, labels)
        table.value = prompt_features_html(rows)
        seen = dict.fromkeys(f for r in rows for f, _, _ in r["features"])
        lit.options = [(f"{f} {labels[f].label if labels else ''}".strip(), f) for f in seen]

    def open_card(change) -> None:
        if atlas is not None and change["new"] is not None:
            card.value = feature_card(atlas, change["new"], labels=labels)[
                "html"
            ]  # the card only: no histogram to draw

    text.observe(update, names="value")
    lit.observe(open_card, names="value")
    update()
    box = W.VBox([text, table, lit, card])
    box.controls = {"prompt": text, "table": table, "lit": lit, "card": card}
    return box


def parse_features(text: str, n_latents: int) -> list[int] | None:
    """Feature ids typed as "463, 173" (None when empty: the selection's top-k is used). A bad id is one
    clear error that says what to type."""
    parts = [p for p in text.replace(";", ",").replace(" ", ",").split(",") if p]
    if not parts:
        return None
    if not all(p.lstrip("#").isdigit() for p in parts):
        raise ValueError(f"type feature ids as whole numbers separated by commas (e.g. 463, 173), not {text!r}")
    ids = [int(p.lstrip("#")) for p in parts]
    bad = [i for i in ids if not 0 <= i < n_latents]
    if bad:
        raise ValueError(f"features {bad} are outside this SAE's {n_latents} latents (0..{n_latents - 1})")
    return ids


def erasure_view(generate: Callable, activations: Callable, prompt: str, lam: float, mode: str, top_k: int,
                 features: list[int] | None = None) -> dict:  # fmt: skip
    """Before/after images and per-token activations for one setting.

    `generate(prompt, lam, mode, top_k, features)` returns (before, after) uint8 images;
    `activations(prompt, top_k, features)` returns (tokens, values). `features` (any latent ids, from
    the atlas or typed) replaces the selection's top-k when given.
    """
    before, after = generate(prompt, lam, mode, top_k, features)
    toks, vals = activations(prompt, top_k, features)
    silent = not np.any(np.asarray(vals) > 0)
    what = f"features {', '.join(map(str, features))}" if features else f"top-{top_k}"
    fig = image_grid([before, after], ["original", f"erased (lambda {lam}, mode {mode}, {what})"], ncols=2,
                     title=prompt[:80])  # fmt: skip
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return {
        "png": buf.getvalue(),
        "html": token_html(toks, vals),
        "before": before,
        "after": after,
        "changed": float(np.abs(before.astype(int) - after.astype(int)).mean()),
        "silent": silent,
    }


def first_firing(activations: Callable, prompts, top_k: int = 1) -> str | None:
    """The first of `prompts` on which the chosen neurons fire (where the panel has something to show)."""
    for p in prompts:
        if np.any(np.asarray(activations(p, top_k, None)[1]) > 0):
            return p
    return None


def erasure_panel(generate: Callable, activations: Callable, prompt: str = "", lam: float = 1.0,
                  n_latents: int | None = None):  # fmt: skip
    import ipywidgets as W

    text = W.Text(value=prompt, description="prompt", layout=W.Layout(width="60%"), continuous_update=False)
    lam_w = W.FloatSlider(value=lam, min=0.0, max=2.0, step=0.1, description="lambda")
    mode = W.ToggleButtons(options=["B", "A"], value="B", description="mode")
    topk = W.IntSlider(value=1, min=1, max=20, description="top-k")
    feats = W.Text(value="", description="features", placeholder="any ids, e.g. 463, 173 (empty: the top-k)",
                   continuous_update=False)  # fmt: skip
    img = W.Image(format="png")
    toks = W.HTML()
    info = W.HTML()

    def update(*_):
        try:
            chosen = parse_features(feats.value, n_latents or 2**31)
        except ValueError as exc:
            info.value = f"<b>{exc}</b>"
            return
        v = erasure_view(generate, activations, text.value, lam_w.value, mode.value, topk.value, chosen)
        img.value, toks.value = v["png"], v["html"]
        info.value = f"mean pixel change: {v['changed']:.2f} / 255"
        if v["silent"]:
            info.value += (" &nbsp; <b>The chosen neurons are silent on every token of this prompt</b>: mode B "
                           "leaves it exactly as it is. Try a prompt that names the concept.")  # fmt: skip

    for w in (text, lam_w, mode, topk, feats):
        w.observe(update, names="value")
    if prompt:
        update()
    box = W.VBox([text, W.HBox([lam_w, mode, topk]), feats, img, W.HTML("<b>neuron activation per token</b>"), toks,
                  info])  # fmt: skip
    box.controls = {
        "prompt": text,
        "lam": lam_w,
        "mode": mode,
        "top_k": topk,
        "features": feats,
        "image": img,
        "tokens": toks,
        "info": info,
    }
    return box


def erasure_backend(
    pipe,
    encoder,
    sae,
    ranking,
    tuple_prompt: str,
    seed: int = 0,
    steps: int = 25,
    guidance: float = 3.0,
    resolution: int = 16,
):
    """The two callbacks of the erasure panel, as plain functions: generate(prompt, lam, mode, top_k,
    features=None) -> (before, after) and activations(prompt, top_k, features=None) -> (tokens, values);
    `features` (any latent ids) replaces the ranking's top-k."""
    from snce_lib.concepts.codes import prompt_codes
    from snce_lib.concepts.erase import Eraser

    cache: dict = {}

    def neurons(top_k: int, features: list[int] | None) -> list[int]:
        return list(features) if features else list(ranking[:top_k])

    def generate(prompt: str, lam: float, mode: str, top_k: int, features: list[int] | None = None):
        if prompt not in cache:
            cache[prompt] = one_image(pipe, prompt, seed, steps, guidance, resolution)
        er = Eraser(sae, neurons(top_k, features), lam, mode, tuple_prompt)
        after = one_image(pipe, prompt, seed, steps, guidance, resolution, er)
        return cache[prompt], after

    def activations(prompt: str, top_k: int, features: list[int] | None = None):
        codes = prompt_codes(encoder, sae, [prompt])
        real, pad = codes.real[0], codes.pad[0]
        acts = codes.activation(neurons(top_k, features))[0]
        toks = encoder.token_strings(codes.token_ids[0][real].tolist())
        vals = acts[real].numpy()
        if bool(pad.any()):
            # the padding positions as one cell, their largest activation: mode B edits them too, so a
            # neuron that fires only there is not silent
            toks, vals = [*toks, "[padding, max]"], np.append(vals, float(acts[pad].max()))
        return toks, vals

    return generate, activations


def concept_tester(encoder, sae, top: int, family, probe=None, prompts: str = "", labels=None):
    """ "Test it": type prompts, one a line (fresh ones that say the concept in other words, and some that
    do not), and see the top-1 latent's, the family's and the dense probe's scores side by side
    (`concepts.family.concept_scores`)."""
    import html

    import ipywidgets as W

    from snce_lib.concepts.family import concept_scores

    box_in = W.Textarea(value=prompts, placeholder="one prompt a line", layout=W.Layout(width="70%", height="8em"))
    go = W.Button(description="score")
    table = W.HTML()
    name = labels[top].label if labels else ""

    def update(*_):
        rows = concept_scores(encoder, sae, box_in.value.splitlines(), top, family, probe)
        if not rows:
            table.value = "<i>type a prompt, one a line</i>"
            return
        cols = [k for k in rows[0] if k != "prompt"]
        head = "".join(f"<th>{html.escape(c)}</th>" for c in ["prompt", *cols])
        body = "".join("<tr><td>" + html.escape(r["prompt"]) + "</td>" + "".join(f"<td>{r[c]:.2f}</td>" for c in cols)
                       + "</tr>" for r in rows)  # fmt: skip
        table.value = (f"<p>top-1 latent #{top} {html.escape(name)}; family of {len(family.latents)} latents</p>"
                       f"<table><tr>{head}</tr>{body}</table>")  # fmt: skip

    go.on_click(update)
    if prompts:
        update()
    box = W.VBox([box_in, go, table])
    box.controls = {"prompts": box_in, "score": go, "table": table, "update": update}
    return box
