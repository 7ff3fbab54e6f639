"""Widgets driven in code: set a control's value, check that the output changes as it should."""

import html

import numpy as np
import pytest
import torch

from snce_lib.atlas.cards import feature_card
from snce_lib.atlas.map import build_atlas
from snce_lib.models.encoders import from_pipeline
from snce_lib.sae.train import TrainConfig, train_sae
from snce_lib.workbook.widgets import erasure_backend, erasure_panel, feature_browser, first_firing
from tests.helpers import PROMPTS


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from snce_lib.models.pipelines import build_tiny_sd, load_pipeline

    pipe = load_pipeline(str(build_tiny_sd(tmp_path_factory.mktemp("sd") / "tiny")), device="cpu")
    enc = from_pipeline(pipe)
    h = enc.run_to_block(enc.tokenize(PROMPTS * 8), 2)[:, 1:].reshape(-1, 32)
    sae = train_sae(
        h,
        TrainConfig(n_latents=64, k=4, lr=3e-3, batch_size=256, tokens=100 * 256, dead_after_tokens=5000),
        layer="encoder.layers.2",
        layer_index=2,
        progress=False,
    ).sae.requires_grad_(False)
    return pipe, enc, sae


def test_feature_browser_follows_its_controls(setup):
    _, enc, sae = setup
    atlas = build_atlas(enc, sae, PROMPTS, progress=False)
    order = np.argsort(-atlas.frequency)
    box = feature_browser(atlas, start=int(order[0]))
    c = box.controls
    first_html, first_png = c["card"].value, c["hist"].value
    assert f"feature {int(order[0])}:" in first_html
    c["feature"].value = int(order[1])
    assert f"feature {int(order[1])}:" in c["card"].value and c["card"].value != first_html
    assert c["hist"].value != first_png
    c["word"].value = "red"
    assert c["matches"].options, c["status"].value
    assert c["feature"].value == c["matches"].options[0][1]
    c["word"].value = "zzzz"
    assert "no feature" in c["status"].value
    assert "no feature" in c["card"].value and not c["hist"].value  # no stale card beside the message
    assert not c["word"].continuous_update  # searches on Enter, not on every keystroke
    assert c["hist"].layout.height == "240px"  # the histogram keeps its size inside the HBox
    top = feature_card(atlas, int(order[0]))["top"][0]["token"]
    assert isinstance(top, str) and f"top token: {html.escape(top)}" in feature_card(atlas, int(order[0]))["html"]


def test_erasure_panel_follows_its_controls(setup):
    pipe, enc, sae = setup
    codes = sae.encode_dense(enc.run_to_block(enc.tokenize([PROMPTS[0]]), 2)[0, 1:])
    ranking = torch.argsort(codes.amax(0), descending=True).tolist()
    gen, acts = erasure_backend(pipe, enc, sae, ranking, PROMPTS[0], seed=1, steps=2, guidance=7.5, resolution=32)
    box = erasure_panel(gen, acts, prompt=PROMPTS[0], lam=0.0)
    c = box.controls
    assert "0.00 / 255" in c["info"].value  # lambda 0: no change
    png0, tok0 = c["image"].value, c["tokens"].value
    c["lam"].value = 1.5
    assert c["image"].value != png0 and "0.00 / 255" not in c["info"].value
    c["prompt"].value = "the cat"
    assert c["tokens"].value != tok0 and "cat" in c["tokens"].value
    c["mode"].value = "A"
    c["top_k"].value = 3
    assert c["image"].value  # still renders
    assert not c["prompt"].continuous_update


def test_erasure_panel_says_when_the_neuron_is_silent(setup):
    pipe, enc, sae = setup
    codes = sae.encode_dense(enc.run_to_block(enc.tokenize(PROMPTS), 2)[:, 1:]).amax((0, 1))
    silent = [int(i) for i in torch.nonzero(codes == 0).flatten()]
    if not silent:
        pytest.skip("every latent fires on these prompts")
    gen, acts = erasure_backend(pipe, enc, sae, silent, PROMPTS[0], seed=1, steps=2, guidance=7.5, resolution=32)
    assert first_firing(acts, PROMPTS) is None
    box = erasure_panel(gen, acts, prompt=PROMPTS[0], lam=1.0)
    assert "silent on every token" in box.controls["info"].value
    loud = int(codes.argmax())
    gen, acts = erasure_backend(pipe, enc, sae, [loud], PROMPTS[0], seed=1, steps=2, guidance=7.5, resolution=32)
    start = first_firing(acts, PROMPTS)
    assert start is not None and "silent" not in erasure_panel(gen, acts, prompt=start).controls["info"].value


def test_the_erasure_panel_erases_any_typed_feature(setup):
    """Typed ids replace the selection's top-k: a silent selection changes nothing, the loudest latent
    typed in changes the image; a bad id says what to type and renders nothing."""
    from snce_lib.workbook.widgets import parse_features

    pipe, enc, sae = setup
    codes = sae.encode_dense(enc.run_to_block(enc.tokenize(PROMPTS), 2)[:, 1:]).amax((0, 1))
    silent = [int(i) for i in torch.nonzero(codes == 0).flatten()]
    if not silent:
        pytest.skip("every latent fires on these prompts")
    gen, acts = erasure_backend(pipe, enc, sae, silent, PROMPTS[0], seed=1, steps=2, guidance=7.5, resolution=32)
    box = erasure_panel(gen, acts, prompt=PROMPTS[0], lam=1.5, n_latents=sae.cfg.n_latents)
    c = box.controls
    assert "0.00 / 255" in c["info"].value
    c["features"].value = f"#{int(codes.argmax())}"
    assert "0.00 / 255" not in c["info"].value and "silent" not in c["info"].value
    c["features"].value = f"3, {sae.cfg.n_latents}"
    assert "outside this SAE" in c["info"].value
    assert parse_features(" ", 10) is None and parse_features("1; 2 3", 10) == [1, 2, 3]
    with pytest.raises(ValueError, match="whole numbers"):
        parse_features("red", 10)


def test_a_feature_strip_ablates_where_it_fires_and_boosts_everywhere(setup):
    """The strip's ablated image equals the original where the feature is silent (mode B at lambda 1)
    and differs where it fires; the boost changes every prompt."""
    from snce_lib.evaluation.draws import feature_strip, strip_figure

    pipe, enc, sae = setup
    z = sae.encode_dense(enc.run_to_block(enc.tokenize(PROMPTS), 2)[:, 1:]).amax(1)  # [prompts, latents]
    f = int(torch.argmax((z > 0).sum(0) * (z > 0).sum(0).lt(len(PROMPTS))))  # fires on some prompts, not all
    fired = (z[:, f] > 0).tolist()
    strip = feature_strip(pipe, enc, sae, f, PROMPTS, steps=2, guidance=7.5, resolution=32)
    assert strip.fired == fired and strip.alpha > 0
    for i, ch in enumerate(strip.changed("ablated")):
        assert (ch > 0) == fired[i], (i, ch)
    assert all(ch > 0 for ch in strip.changed("boosted"))
    fig = strip_figure(strip, "some label")
    assert f"#{f} (some label)" in fig._suptitle.get_text() and len(fig.axes) == 3 * len(PROMPTS)
    with pytest.raises(ValueError, match="not one of this SAE"):
        feature_strip(pipe, enc, sae, sae.cfg.n_latents, PROMPTS[:1])


def test_explore_and_discover_on_a_tiny_dictionary(setup, tmp_path):
    from snce_lib.atlas.explore import discover, explore
    from snce_lib.atlas.html import notebook_frame, write_atlas

    _, enc, sae = setup
    ex = explore(enc, sae, PROMPTS * 3, concept="nudity", n_clusters=4, progress=False)
    assert len(ex.page["features"]) == sae.cfg.n_latents == len(ex.labels)
    # a random tiny encoder: nearly every live feature fires mostly on SD's 77-position padding
    assert ex.set_aside["live"] == int((ex.kinds.kind >= 0).sum()) and ex.set_aside["counts"]["end_pad"] > 0
    assert ex.describe().startswith(f"showing {ex.set_aside['counts']['content']} content features")
    assert [f["shown"] for f in ex.page["features"]] == ex.shown().tolist() == ex.kinds.content().tolist()
    every = explore(enc, sae, PROMPTS * 3, concept="nudity", n_clusters=4, show="all", progress=False)
    assert set(every.map_scores) == {"decoder", "co-activation"} and every.layout.name in every.map_scores
    sil = {k: v["silhouette"] for k, v in every.map_scores.items()}
    assert sil[every.layout.name] == max(sil.values()) and every.layout.names
    assert sum(f["shown"] for f in every.page["features"]) == ex.set_aside["live"]
    page = write_atlas(ex.page, tmp_path / "atlas.html").read_text()
    assert page.startswith("<!doctype html>") and "<script src" not in page  # self-contained
    assert "srcdoc" in notebook_frame(ex.page).data
    found = discover(enc, sae, PROMPTS[:4], PROMPTS[4:])
    assert "mean difference" in found and len(found["mean difference"].top(3)) == 3


def test_prompt_lens_shows_each_token_s_features_and_opens_their_cards(setup):
    from snce_lib.atlas.cards import prompt_features
    from snce_lib.atlas.labels import label_features
    from snce_lib.workbook.widgets import prompt_lens

    _, enc, sae = setup
    atlas = build_atlas(enc, sae, PROMPTS, progress=False)
    labels = label_features(atlas)
    rows = prompt_features(enc, sae, PROMPTS[0], labels)
    n_real = int(enc.tokenize([PROMPTS[0]]).attention_mask.sum()) - 1  # every position after BOS but padding
    assert len(rows) == n_real and all(len(r["features"]) <= 3 for r in rows)
    # the features named for a token are its strongest SAE latents at that position
    h = enc.run_to_block(enc.tokenize([PROMPTS[0]]), 2)[0, 1 : 1 + n_real]
    z = sae.encode_dense(h)
    for j, r in enumerate(rows):
        assert [f for f, _, _ in r["features"]] == torch.argsort(z[j], descending=True)[: len(r["features"])].tolist()
        assert all(lab == labels[f].label for f, _, lab in r["features"])
    box = prompt_lens(enc, sae, labels, atlas, prompt=PROMPTS[0])
    c = box.controls
    assert not c["prompt"].continuous_update and c["table"].value.count("<tr>") == n_real + 1
    first = c["table"].value
    c["prompt"].value = PROMPTS[3]
    assert c["table"].value != first and c["lit"].options
    c["lit"].value = c["lit"].options[-1][1]
    assert f"<h4>#{c['lit'].value} (" in c["card"].value  # the card is headed by the feature with its label
    c["prompt"].value = "  "
    assert "type a prompt" in c["table"].value and not c["lit"].options


def test_the_panel_counts_a_neuron_that_fires_only_on_padding(setup):
    """Mode B edits padding positions too: the panel shows them as one cell and does not call such a
    neuron silent (it once read the words and the end token only)."""
    pipe, enc, sae = setup
    toks = enc.tokenize(PROMPTS)
    z = sae.encode_dense(enc.run_to_block(toks, 2)[:, 1:])
    real = toks.attention_mask[:, 1:].bool()
    on_real = (z * real.unsqueeze(-1)).amax((0, 1))
    on_pad = (z * (~real).unsqueeze(-1)).amax((0, 1))
    pad_only = [int(i) for i in torch.nonzero((on_real == 0) & (on_pad > 0)).flatten()]
    if not pad_only:
        pytest.skip("no latent of this tiny SAE fires on padding alone")
    gen, acts = erasure_backend(pipe, enc, sae, pad_only[:1], PROMPTS[0], seed=1, steps=2, guidance=7.5, resolution=32)
    start = first_firing(acts, PROMPTS)
    assert start is not None
    names, values = acts(start, 1)
    assert names[-1] == "[padding, max]" and values[-1] > 0 and not np.any(np.asarray(values[:-1]) > 0)
    assert "silent" not in erasure_panel(gen, acts, prompt=start, lam=1.0).controls["info"].value
