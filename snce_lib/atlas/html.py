"""A shareable atlas: one self-contained HTML file (map, search, feature cards; no server, no
kernel, no external script) that opens in any browser, and the same file shown inside a notebook.

`atlas_data` gathers everything as plain data (tested directly); `render_html` writes the page.
A feature's card shows what a Neuronpedia page shows, adapted to a text encoder
(`profile.feature_profile`). The page holds text only (prompts and tokens, no images), so there is
nothing for NudeNet to flag; each card keeps a slot (`#draws`) for a "what it draws" image strip,
filled only from `atlas_data(draws=...)`, whose maker must blur what NudeNet flags.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

import numpy as np
import torch

from snce_lib.atlas.clusters import MapClusters
from snce_lib.atlas.labels import FeatureLabel, clean, word_features
from snce_lib.atlas.map import Atlas
from snce_lib.io import atomic_write_text


def atlas_data(atlas: Atlas, labels: list[FeatureLabel], layout: MapClusters, w_dec: torch.Tensor,
               concept_score: np.ndarray | None = None, n_examples: int = 3, n_near: int = 5,
               title: str = "SAE feature atlas", shown: np.ndarray | None = None, note: str = "",
               per_band: int = 1, draws: dict | None = None) -> dict:  # fmt: skip
    """The page's data: per feature its position, cluster, label with its score, held-out prompts and
    kind, whether it is shown by default (`shown`; default every feature), frequency, and what its
    card shows (`profile.feature_profile`): the activation density by kind of position, its
    `n_examples` top prompts and `per_band` from each quantile band (each prompt's activations at
    every position, padding included, position -> value), the features that co-fire with it, the
    vocabulary tokens that light it alone; its nearest features by decoder cosine; the prompts'
    tokens once (with their padding count); a word index (whole word -> the features it predicts
    best); `note`, the line that says what is set aside. `draws` (feature -> HTML) fills each card's
    "what it draws" slot; none by default."""
    from snce_lib.atlas.profile import feature_profile

    shown = np.ones(atlas.n_latents, dtype=bool) if shown is None else np.asarray(shown, dtype=bool)
    w = torch.nn.functional.normalize(w_dec.detach().float(), dim=1)
    near = torch.topk(w @ w.T - 2 * torch.eye(len(w)), min(n_near, len(w) - 1), dim=1).indices.tolist()
    used: dict[int, int] = {}

    def ref(e: dict) -> list:  # an example as [prompt ref, [[position, value], ...], peak, peak position]
        used.setdefault(e["prompt"], len(used))
        acts = [[j, round(a, 2)] for j, a in sorted(e["acts"].items())]  # two decimals: the page shades, prints none
        return [used[e["prompt"]], acts, e["peak"], e["position"]]

    feats = []
    for f in range(atlas.n_latents):
        prof = feature_profile(atlas, f, labels, n_top=n_examples, per_band=per_band)
        lab = labels[f]
        feats.append({"x": round(float(layout.xy[f, 0]), 3), "y": round(float(layout.xy[f, 1]), 3),
                      "c": int(layout.cluster[f]), "label": lab.label, "status": lab.status, "freq": lab.frequency,
                      "kind": lab.kind, "lscore": lab.score, "held": lab.held_out, "trigger": lab.trigger,
                      "shown": bool(shown[f]), "top": lab.top_tokens, "near": near[f],
                      "ex": [ref(e) for e in prof["top"]], "n_prompts": prof["prompts"],
                      "bands": [[q["band"], q["lo"], q["hi"], [ref(e) for e in q["examples"]]] for q in prof["quantiles"]],
                      "dens": prof["density"], "co": [[g, round(j, 2), round(sh, 2)] for g, j, sh in prof["cofire"]],
                      "vocab": None if prof["vocab"] is None else [[t, round(a, 2)] for t, a in prof["vocab"]],
                      "draws": (draws or {}).get(f),
                      "score": float(concept_score[f]) if concept_score is not None else None})  # fmt: skip
    prompts = [None] * len(used)
    codes = atlas.codes
    for p, i in used.items():
        prompts[i] = [[clean(atlas.token(t)) for t in codes.token_ids[p][codes.real[p]].tolist()],
                      int(codes.pad[p].sum())]  # fmt: skip
    return {"title": title, "map": layout.name, "features": feats, "prompts": prompts, "note": note,
            "clusters": {str(k): v for k, v in layout.names.items()}, "words": {w: [f for f, _ in v] for w, v in word_features(atlas).items()}}  # fmt: skip


def render_html(data: dict) -> str:
    """The page: an SVG map (hover: label; click: card), a colour switch, a word search, the card."""
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    return _PAGE.replace("__TITLE__", html.escape(data["title"])).replace("__DATA__", payload)


def write_atlas(data: dict, path: str | os.PathLike) -> Path:
    path = Path(path)
    atomic_write_text(path, render_html(data))
    return path


def notebook_frame(data: dict, height: int = 720):
    """The page inside an iframe, as an IPython HTML object to `display` (JupyterLab and Colab run
    its script: an iframe's `srcdoc` needs no server and no widget manager)."""
    import warnings

    from IPython.display import HTML

    frame = (f'<iframe srcdoc="{html.escape(render_html(data), quote=True)}" '
             f'style="width:100%;height:{height}px;border:1px solid #ddd"></iframe>')  # fmt: skip
    with warnings.catch_warnings():  # IPython suggests its IFrame, which needs a URL; srcdoc needs none
        warnings.simplefilter("ignore", UserWarning)
        return HTML(frame)


#: For the browser checks (tests, scripts/lab_check.py), run inside the page: each cluster name that
#: is not wholly inside both the map and the page's visible viewport, with its box. An empty list
#: means a reader sees every name; `.text` in selenium would only say whether any of it is shown.
HIDDEN_NAMES_JS = """const m = document.getElementById("map").getBoundingClientRect(), out = [];
const vw = window.innerWidth, vh = window.innerHeight;
for (const t of document.querySelectorAll("#map text.cl")) { const r = t.getBoundingClientRect();
  const inside = r.width > 0 && r.left >= m.left - 0.5 && r.right <= m.right + 0.5 && r.top >= m.top - 0.5
    && r.bottom <= m.bottom + 0.5 && r.left >= 0 && r.top >= 0 && r.right <= vw + 0.5 && r.bottom <= vh + 0.5;
  if (!inside) out.push([t.textContent, Math.round(r.left), Math.round(r.top), Math.round(r.right), Math.round(r.bottom)]); }
return {hidden: out, n: document.querySelectorAll("#map text.cl").length, map: [m.left, m.top, m.right, m.bottom],
        viewport: [vw, vh]};"""

_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>__TITLE__</title>
<style>
body{font-family:sans-serif;margin:8px;color:#222} #top{display:flex;gap:12px;align-items:center;flex-wrap:wrap}
#main{display:flex;gap:12px;flex-wrap:wrap;align-items:flex-start} #mapbox{flex:1 1 360px;max-width:640px;min-width:0}
#map{display:block;width:100%;height:auto;border:1px solid #ccc;background:#fafafa} #card{flex:1 1 320px;min-width:0;font-size:14px}
circle{cursor:pointer} circle.hit{stroke:#000;stroke-width:2} .cl{font-size:11px;fill:#333;pointer-events:none}
.tok{padding:1px 2px;border-radius:3px} .tok.pad{display:inline-block;width:7px;height:1em;padding:0;margin:0 1px;vertical-align:middle}
.padrun{color:#999;font-size:11px} .ex{margin:3px 0;line-height:1.7} #card>div{margin:4px 0} #hover{color:#555;height:1.2em} #note{color:#555;font-size:13px}
</style></head><body>
<h3>__TITLE__</h3>
<div id="top">colour by <select id="colour"><option value="c">cluster</option><option value="f">frequency</option>
<option value="s">concept score</option></select>
<input id="search" placeholder="search a word, press Enter"> <label><input type="checkbox" id="all"> show set-aside features</label>
<span id="status"></span></div>
<div id="note"></div>
<div id="hover"></div>
<div id="main"><div id="mapbox"><svg id="map" viewBox="0 0 640 560" preserveAspectRatio="xMidYMid meet"></svg></div>
<div id="card"><i>click a point</i></div></div>
<script>
const D = __DATA__;
const F = D.features, svg = document.getElementById("map"), NS = "http://www.w3.org/2000/svg";
const xs = F.map(f => f.x), ys = F.map(f => f.y);
const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
const px = x => 50 + 540 * (x - x0) / ((x1 - x0) || 1), py = y => 520 - 490 * (y - y0) / ((y1 - y0) || 1);
function hue(i) { return "hsl(" + ((i * 137.5) % 360) + ",65%,50%)"; }
function shade(v) { return "hsl(220,70%," + (90 - 60 * v) + "%)"; }
const maxLogF = Math.max(...F.map(f => Math.log10(f.freq + 1e-6))), minLogF = Math.min(...F.map(f => Math.log10(f.freq + 1e-6)));
const maxS = Math.max(...F.map(f => f.score || 0)) || 1;
document.getElementById("note").textContent = D.note || "";
const dots = F.map((f, i) => {
  const c = document.createElementNS(NS, "circle");
  c.setAttribute("cx", px(f.x)); c.setAttribute("cy", py(f.y)); c.setAttribute("r", 3); c.id = "f" + i;
  const t = document.createElementNS(NS, "title"); t.textContent = "feature " + i + ": " + f.label; c.appendChild(t);
  c.addEventListener("mouseenter", () => document.getElementById("hover").textContent = "feature " + i + ": " + f.label);
  c.addEventListener("click", () => card(i)); svg.appendChild(c); return c;
});
const cent = {};
F.forEach(f => { if (f.c >= 0) { const k = cent[f.c] || (cent[f.c] = [0, 0, 0]); k[0] += f.x; k[1] += f.y; k[2]++; } });
for (const [c, k] of Object.entries(cent)) {
  const t = document.createElementNS(NS, "text"); t.setAttribute("class", "cl"); t.setAttribute("text-anchor", "middle");
  t.textContent = D.clusters[c] || ""; svg.appendChild(t);
  // a name centred on its cluster, moved inwards where it would run past the map's edge (a map puts
  // clusters anywhere, and the drawn box is all a reader sees)
  const w = t.getComputedTextLength ? t.getComputedTextLength() : 6 * t.textContent.length;
  t.setAttribute("x", Math.min(Math.max(px(k[0] / k[2]), 4 + w / 2), 636 - w / 2));
  t.setAttribute("y", Math.min(Math.max(py(k[1] / k[2]), 16), 552));
}
// the notebook shows this page in an iframe of its own origin (srcdoc): grow that frame to the page
function fitFrame() {
  try { const fe = window.frameElement; if (fe) fe.style.height = (document.documentElement.scrollHeight + 8) + "px"; }
  catch (e) { /* a frame of another origin keeps its size */ }
}
window.addEventListener("load", fitFrame); window.addEventListener("resize", fitFrame);
function visible(i) { return F[i].shown || document.getElementById("all").checked; }
function showAll() { dots.forEach((d, i) => d.style.display = visible(i) ? "" : "none"); }
document.getElementById("all").addEventListener("change", showAll);
showAll();
function colour(by) {
  dots.forEach((d, i) => { const f = F[i];
    d.setAttribute("fill", by === "c" ? (f.c < 0 ? "#bbb" : hue(f.c))
      : by === "f" ? shade((Math.log10(f.freq + 1e-6) - minLogF) / ((maxLogF - minLogF) || 1))
      : shade((f.score || 0) / maxS)); });
}
document.getElementById("colour").addEventListener("change", e => colour(e.target.value));
colour("c");
function esc(s) { return String(s).replace(/[&<>"]/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c])); }
const KC = {content: "#e8590c", function: "#1c7ed6", end_pad: "#868e96"};
const KN = {content: "content words", function: "function words", end_pad: "end token and padding"};
// one prompt as the encoder reads it: tokens, then padding (a narrow cell a position; a silent run is one grey cell)
function row(e, vmax) {
  const [p, acts, peak, at] = e, toks = D.prompts[p][0], npad = D.prompts[p][1], A = {};
  for (const [j, a] of acts) A[j] = a;
  const cell = (j, t, pad) => { const a = A[j] || 0, al = Math.min(1, a / vmax).toFixed(2);
    return "<span class='tok" + (pad ? " pad" : "") + "' title='" + (j + 1) + " " + (pad ? "padding" : esc(t)) + ": " + a.toFixed(3)
      + "' style='background:rgba(255,80,0," + al + ")" + (j === at ? ";outline:2px solid #b00" : "") + "'>" + (pad ? "" : esc(t)) + "</span>"; };
  let h = toks.map((t, j) => cell(j, t, false)).join(" "), j = toks.length;
  const end = toks.length + npad;
  while (j < end) { let r = j; while (r < end && !(A[r] > 0)) r++;
    if (r - j >= 3) { h += " <span class='padrun' title='positions " + (j + 1) + "-" + r + ": padding, silent'>[PAD]&times;" + (r - j) + "</span>"; j = r; }
    else { h += " " + cell(j, "", true); j++; } }
  return "<div class='ex'><b>" + peak.toFixed(2) + "</b> " + h + "</div>";
}
// activation density: bars by activation (x), log10(1 + positions) high (y), split by kind of position
function density(d) {
  const ks = Object.keys(KC), n = d.bins, tot = [];
  for (let j = 0; j < n; j++) tot.push(ks.reduce((s, k) => s + ((d.counts[k] || [])[j] || 0), 0));
  const top = Math.max(1, Math.log10(Math.max(...tot)) + 0.2), W = 280, H = 76, L = 34, B = 86;
  let h = "<svg class='dens' width='320' height='106'>";
  for (let e = 0; e <= Math.floor(top); e++) { const y = B - H * e / top;
    h += "<line x1='" + L + "' x2='" + (L + W) + "' y1='" + y + "' y2='" + y + "' stroke='#eee'/><text x='" + (L - 3) + "' y='" + (y + 3) + "' font-size='9' text-anchor='end'>" + Math.pow(10, e) + "</text>"; }
  for (let j = 0; j < n; j++) { if (!tot[j]) continue; const bh = H * Math.log10(1 + tot[j]) / top; let y = B - bh;
    for (const k of ks) { const c = (d.counts[k] || [])[j] || 0; if (!c) continue; const hh = bh * c / tot[j];
      h += "<rect x='" + (L + j * W / n) + "' y='" + y + "' width='" + Math.max(W / n - 1, 1) + "' height='" + hh + "' fill='" + KC[k] + "'><title>" + KN[k] + ": " + c + "</title></rect>"; y += hh; } }
  h += "<text x='" + L + "' y='102' font-size='9'>" + d.lo.toFixed(2) + "</text><text x='" + (L + W) + "' y='102' font-size='9' text-anchor='end'>"
    + d.hi.toFixed(2) + "</text><text x='" + (L + W / 2) + "' y='102' font-size='9' text-anchor='middle'>activation (SAE units)</text>"
    + "<text x='9' y='48' font-size='9' text-anchor='middle' transform='rotate(-90 9 48)'>positions (log)</text></svg>";
  return h + "<div style='font-size:11px'>" + ks.map(k => "<span style='color:" + KC[k] + "'>&#9632;</span> " + KN[k]).join(" ") + "</div>";
}
function card(i) {
  const f = F[i];
  let h = "<h4>feature " + i + ": " + esc(f.label) + "</h4><div id='label'>" + f.status + " " + esc(f.kind.replace("_", "/"))
    + " feature, fires on " + (100 * f.freq).toFixed(3) + "% of positions; label score (F1 on " + f.held + " held-out prompts): "
    + (f.lscore === null ? "none" : f.lscore.toFixed(2)) + (f.trigger ? "; fires hardest on <b>" + esc(f.trigger) + "</b>" : "")
    + "; strongest on: " + f.top.map(t => esc(t[0]) + " (" + t[1] + ")").join(", ") + "</div>";
  if (f.dens.firings) h += "<div id='density'><b>Activation density</b> (" + f.dens.firings + " firing positions)<br>" + density(f.dens) + "</div>";
  const vmax = f.ex.length ? Math.max(f.ex[0][2], 1e-6) : 1;
  h += "<div id='top'><b>Top activations</b>" + f.ex.map(e => row(e, vmax)).join("") + "</div><div id='bands'>";
  for (const [band, lo, hi, exs] of f.bands)
    h += "<div><b>Quantile " + band + "</b> of the " + f.n_prompts + " prompts it fires in (peaks " + lo.toFixed(2) + "-" + hi.toFixed(2) + ")</div>" + exs.map(e => row(e, vmax)).join("");
  h += "</div><div id='cofire'><b>Co-fires with</b> (on words and the end token; share of its firings, Jaccard): "
    + (f.co.length ? f.co.map(([g, j, s]) => "<a href='#' onclick='card(" + g + ");return false'>" + g + "</a> (" + esc(F[g].label) + "; "
      + Math.round(100 * s) + "%, " + j.toFixed(2) + ")").join(", ") : "<i>none</i>") + "</div>";
  h += "<div id='vocab'><b>Vocabulary alone</b> (each token as a one-word prompt): " + (f.vocab === null ? "<i>not computed</i>"
    : f.vocab.length ? f.vocab.map(([t, a]) => esc(t) + " (" + a.toFixed(2) + ")").join(", ") : "<i>no single token lights it</i>") + "</div>";
  h += "<div>nearest by decoder cosine: " + f.near.map(n => "<a href='#' onclick='card(" + n + ");return false'>" + n
    + "</a> (" + esc(F[n].label) + ")").join(", ") + "</div>";
  // the "what it draws" slot: an image strip, when the page's data carries one for this feature
  h += "<div id='draws'>" + (f.draws || "") + "</div>";
  document.getElementById("card").innerHTML = h;
  dots.forEach(d => d.classList.remove("hit")); dots[i].classList.add("hit");
  fitFrame();
}
document.getElementById("search").addEventListener("keydown", e => {
  if (e.key !== "Enter") return;
  const w = e.target.value.trim().toLowerCase(), hits = (D.words[w] || []).filter(visible);
  dots.forEach(d => d.setAttribute("r", 3));
  hits.forEach(i => dots[i].setAttribute("r", 7));
  document.getElementById("status").textContent = hits.length ? hits.length + " features fire on '" + w + "' (best label match first): " + hits.join(", ")
    : "no shown feature fires on '" + w + "' in this sample";
  if (hits.length) card(hits[0]); else document.getElementById("card").innerHTML = "<i>no feature fires on this word</i>";
});
</script></body></html>
"""
