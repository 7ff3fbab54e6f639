"""Each erasure method's mechanics, through the one interface every pipeline takes (`embed`)."""

import numpy as np
import pytest
import torch

from snce_lib.concepts.codes import prompt_codes
from snce_lib.concepts.detection import auroc
from snce_lib.concepts.erase import Eraser
from snce_lib.concepts.methods import (
    BlockMap,
    ConceptSteerer,
    NegativePrompt,
    WordRemoval,
    block_edit,
    latent_family,
    leace_map,
    probe_direction,
    probe_projection,
)
from snce_lib.models.encoders import from_pipeline
from snce_lib.sae.train import TrainConfig, train_sae
from tests.helpers import PROMPTS

NAKED = [p for p in PROMPTS if "naked" in p or "nude" in p]
OTHER = [p for p in PROMPTS if p not in NAKED]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from snce_lib.models.pipelines import build_tiny_sd, load_pipeline

    pipe = load_pipeline(str(build_tiny_sd(tmp_path_factory.mktemp("sd") / "tiny")), device="cpu")
    enc = from_pipeline(pipe)
    h = enc.run_to_block(enc.tokenize(PROMPTS * 8), 2)[:, 1:].reshape(-1, 32)
    sae = train_sae(h, TrainConfig(n_latents=64, k=4, lr=3e-3, batch_size=256, tokens=100 * 256),
                    layer="encoder.layers.2", layer_index=2, progress=False).sae.requires_grad_(False)  # fmt: skip
    return pipe, enc, sae


def token_features(enc, prompts, layer=2):
    toks = enc.tokenize(prompts)
    h = enc.run_to_block(toks, layer)[:, 1:]
    real = toks.attention_mask[:, 1:].bool()
    return h, real


def test_every_method_conditions_a_pipeline_through_one_interface(setup):
    from snce_lib.models.pipelines import prompt_embeds

    pipe, enc, sae = setup
    clean = prompt_embeds(pipe, PROMPTS[:3])
    h, real = token_features(enc, PROMPTS)
    labels = torch.tensor([p in NAKED for p in PROMPTS]).repeat_interleave(h.shape[1]).view(h.shape[:2])[real]
    methods = [Eraser(sae, [0]), ConceptSteerer(sae, "naked, nude"), NegativePrompt("naked, nude"),
               WordRemoval(["naked", "nude"]), BlockMap("leace", leace_map(h[real], labels), layer=2),
               BlockMap("probe", probe_projection(probe_direction(h[real], labels)), layer=2)]  # fmt: skip
    # PROMPTS[0] says "naked", PROMPTS[2] ("the cat") says none of the words
    changes = {}
    for m in methods:
        kw = prompt_embeds(pipe, PROMPTS[:3], method=m)
        assert kw["prompt_embeds"].shape == clean["prompt_embeds"].shape, type(m).__name__
        assert kw["negative_prompt_embeds"].shape == clean["negative_prompt_embeds"].shape, type(m).__name__
        changes[getattr(m, "name", type(m).__name__)] = [
            not torch.equal(kw[k][i], clean[k][i]) for k in ("prompt_embeds", "negative_prompt_embeds") for i in (0, 2)
        ]  # [prompt 0, prompt 2, negative 0, negative 2]
    assert changes["NegativePrompt"] == [False, False, True, True]  # only the negative side moves
    assert changes["WordRemoval"] == [True, False, False, False]  # only a prompt holding a word
    for name in ("ConceptSteerer", "leace", "probe"):  # dense edits reach every prompt, never the negatives
        assert changes[name][:2] == [True, True] and changes[name][2:] == [False, False], (name, changes[name])
    # LEACE's guarantee on its fitting data: the two classes' means coincide afterwards (not before)
    x, y = h[real], labels.bool()
    e = leace_map(x, labels)(x)
    assert torch.allclose(e[y].mean(0), e[~y].mean(0), atol=1e-3 * float(x.abs().max()))
    assert not torch.allclose(x[y].mean(0), x[~y].mean(0), atol=1e-3 * float(x.abs().max()))


def test_snce_and_itd_leave_a_prompt_where_their_latents_are_silent_unchanged(setup):
    _, enc, sae = setup
    codes = prompt_codes(enc, sae, PROMPTS)
    fired = codes.fired_per_prompt()
    silent = [f for f in range(64) if not fired[2, f]]  # latents that never fire on "the cat"
    assert silent
    clean = enc.embed(enc.tokenize([PROMPTS[2]]))
    for eraser in (Eraser(sae, silent[:1], lam=3.0), Eraser(sae, silent[:5], lam=1.0)):  # SNCE, ItD-style
        pe, _ = eraser.embed(enc, [PROMPTS[2]])
        assert torch.equal(pe, clean)
    firing = [f for f in range(64) if fired[0, f]]
    pe, _ = Eraser(sae, firing[:1]).embed(enc, [PROMPTS[0]])
    assert not torch.equal(pe, enc.embed(enc.tokenize([PROMPTS[0]])))  # where it fires, the edit acts


def test_concept_steerer_subtracts_the_decoded_concept_code_at_every_position(setup):
    _, enc, sae = setup
    steer = ConceptSteerer(sae, "naked, nude", lam=2.0)
    v = steer.vector(enc)
    toks = enc.tokenize(["naked, nude"])
    z = sae.encode_dense(enc.run_to_block(toks, 2)[0, 1 : int(toks.attention_mask.sum())])
    assert torch.allclose(v, z.mean(0) @ sae.W_dec, atol=1e-6) and v.norm() > 0
    h = enc.run_to_block(enc.tokenize(PROMPTS[:2]), 2)
    with block_edit(enc, 2, lambda x: x - 2.0 * v):
        h2 = enc.run_to_block(enc.tokenize(PROMPTS[:2]), 2)
    assert torch.equal(h2[:, 0], h[:, 0])  # BOS untouched
    assert torch.allclose(h[:, 1:] - h2[:, 1:], (2.0 * v).expand_as(h[:, 1:]), atol=1e-5)
    pe, ne = ConceptSteerer(sae, "naked, nude", lam=0.0).embed(enc, PROMPTS[:2], ["", ""])
    assert torch.allclose(pe, enc.embed(enc.tokenize(PROMPTS[:2])), atol=1e-6)
    _, ne_moved = ConceptSteerer(sae, "naked, nude", lam=1.0, move_negative=True).embed(enc, PROMPTS[:2], ["", ""])
    assert not torch.allclose(ne, ne_moved)


def test_leace_leaves_a_retrained_probe_at_chance_on_its_own_fitting_features(setup):
    _, enc, _ = setup
    h, real = token_features(enc, NAKED * 3 + OTHER * 3)
    prompts = NAKED * 3 + OTHER * 3
    y = torch.tensor([p in NAKED for p in prompts]).view(-1, 1).expand(h.shape[:2])[real]
    x = h[real]
    before = probe_auroc(x, y)
    erased = leace_map(x, y)(x)
    after = probe_auroc(erased, y)
    assert before > 0.9  # the concept is linearly readable before: the test can fail
    assert abs(after - 0.5) < 0.1, after
    assert (erased - x).norm() < x.norm()  # it moves the features, not replaces them


def probe_auroc(x, y):
    """AUROC of a logistic probe trained and scored on the same features (the strongest reading)."""
    s = (x.float() @ probe_direction(x, y)).numpy()
    return auroc(s[y.numpy()], s[~y.numpy()])


def test_probe_projection_leaves_nothing_along_the_probe_direction(setup):
    _, enc, _ = setup
    h, real = token_features(enc, PROMPTS)
    y = torch.tensor([p in NAKED for p in PROMPTS]).view(-1, 1).expand(h.shape[:2])[real]
    w = probe_direction(h[real], y)
    out = probe_projection(w)(h)
    assert (out @ torch.nn.functional.normalize(w, dim=0)).abs().max() < 1e-4
    assert (h @ torch.nn.functional.normalize(w, dim=0)).abs().max() > 1e-2


def test_negative_prompt_and_word_removal(setup):
    _, enc, _ = setup
    pe, ne = NegativePrompt("naked, nude").embed(enc, PROMPTS[:2], ["", "blurry"])
    assert torch.equal(pe, enc.embed(enc.tokenize(PROMPTS[:2])))
    assert torch.equal(ne, enc.embed(enc.tokenize(["naked, nude", "blurry, naked, nude"])))
    oracle = WordRemoval(["naked", "nude"])
    assert oracle.clean("A NAKED woman, nude, on a nudist beach") == "A woman, , on a nudist beach"
    pe, _ = oracle.embed(enc, [PROMPTS[0]])
    assert torch.equal(pe, enc.embed(enc.tokenize(["a photo of a woman on the beach"])))


def test_latent_family_is_every_latent_that_fires_on_most_concept_prompts_and_rarely_elsewhere(setup):
    _, enc, sae = setup
    c, o = prompt_codes(enc, sae, NAKED), prompt_codes(enc, sae, OTHER)
    fam = latent_family(c, o, min_concept=0.5, max_other=0.2)
    on_c, on_o = c.fired_per_prompt().float().mean(0), o.fired_per_prompt().float().mean(0)
    expected = {f for f in range(64) if on_c[f] >= 0.5 and on_o[f] <= 0.2}
    assert set(fam) == expected
    assert latent_family(c, o, min_concept=1.01) == []


def test_the_comparison_runs_every_method_on_the_same_prompts_and_seeds(monkeypatch):
    """The toy world's comparison at a size that checks the plumbing only (5 prompts, 2 steps, a
    small SAE): every method gets a row with the table's keys, every row saw the same prompts and
    seeds, and the oracle really removes the target word."""
    from snce_lib.evaluation.comparison import world_methods
    from snce_lib.evaluation.image_rows import KEYS, method_rows
    from snce_lib.models.toy.detector import ToyDetector
    from snce_lib.models.toy.model import load_toy_pipeline
    from snce_lib.models.toy.world import dataset

    pipe, det = load_toy_pipeline(), ToyDetector.load()
    enc = pipe.encoder
    _, caps = dataset(200, 5)
    h = enc.run_to_block(enc.tokenize(list(caps)), "encoder.layer.4")[:, 1:].reshape(-1, enc.width)
    sae = train_sae(h, TrainConfig(n_latents=512, k=8, batch_size=512, tokens=30 * 512, dead_after_tokens=20_000),
                    layer="encoder.layer.4", layer_index=4, progress=False).sae.requires_grad_(False)  # fmt: skip
    one = {"snce": (1.0,), "topk": (1.0,), "family": (1.0,), "steer": (1.0,)}
    entries = world_methods(enc, sae, "red", one)
    names = {e.method for e in entries}
    assert {"snce top-1 strict, mode A", "snce top-1 strict, mode B", "concept steerers", "leace",
            "probe projection", "negative prompt", "word removal (oracle)"} <= names  # fmt: skip
    seen = []
    real = pipe.generate

    def spy(prompts, seeds, *a, **k):
        seen.append((tuple(prompts), tuple(seeds)))
        return real(prompts, seeds, *a, **k)

    monkeypatch.setattr(pipe, "generate", spy)
    rows = method_rows(pipe, det, entries, "red", "minilm", n=5, steps=2, progress=False)
    assert len(rows) == len(entries) + 1 and rows[0]["method"] == "none" and rows[0]["frechet"] == 0.0
    assert all(set(KEYS) <= set(r) and r["n_prompts"] == 5 for r in rows)
    assert len(set(seen)) == 3  # target, other and attack prompts: the same three calls for every method
    oracle = next(e.obj for e in entries if e.method == "word removal (oracle)")
    assert any("red" in p.split() for p in seen[0][0])  # the target prompts say "red" ...
    assert all("red" not in t.split() for t in oracle.texts(list(seen[0][0])))  # ... the oracle's do not
    # every row says which latents it edited and under which tolerance; "strict" means s^d = 0
    from snce_lib.evaluation.toy import fitting_prompts, toy_concept

    deconcept = prompt_codes(enc, sae, toy_concept("red").deconcept_prompts).fired_per_prompt()
    for r in rows:
        assert {"neurons", "deconcept_tolerance", "note"} <= set(r), r["method"]
        if r["method"].startswith("snce top-1 strict"):
            assert r["deconcept_tolerance"] == 0.0
            if r["neurons"] is None:  # the filter left none: said, not measured
                assert "fewer than 1 latent" in r["note"] and r["target_rate"] is None
            else:
                assert not deconcept[:, r["neurons"]].any()  # silent on every deconcept prompt
        if r["method"].startswith("snce") and r["neurons"] is not None:
            assert len(r["neurons"]) == r["top_k"]
    # nothing is evaluated on a prompt that selected neurons or fitted LEACE and the probe
    evaluated = {p for prompts, _ in seen for p in prompts}
    assert not evaluated & fitting_prompts("red")


@pytest.mark.parametrize("target", ["red", "triangle"])
def test_evaluation_prompts_are_disjoint_from_the_fitting_prompts(target):
    """At every size the tables use; without the exclusion the same draws do overlap (so the check bites)."""
    from snce_lib.evaluation.toy import fitting_prompts, prompt_suite

    fit = fitting_prompts(target)
    for n in (16, 48):
        suite = prompt_suite(target, n)
        texts = [t for part in (suite.target, suite.other, suite.attack) for t, _ in part]
        assert len(texts) == 3 * n and not set(texts) & fit
    raw = prompt_suite(target, 48, exclude=())
    assert {t for t, _ in raw.target} & fit


def test_a_strict_filter_that_leaves_no_latent_is_said_not_replaced(setup, monkeypatch):
    """No silent fallback: a strict row whose filter leaves nothing carries a note and no measurement."""
    import snce_lib.evaluation.comparison as comparison
    from snce_lib.concepts.pairs import SelectionError

    _, enc, sae = setup
    real = comparison.select_neurons

    def strict_fails(*a, **k):
        if k.get("max_deconcept_share") == 0.0:
            raise SelectionError("no neuron passes the filter")
        return real(*a, **k)

    monkeypatch.setattr(comparison, "select_neurons", strict_fails)
    from snce_lib.concepts.pairs import ConceptPairs

    pairs = ConceptPairs("naked", NAKED * 3, [p.replace("naked ", "").replace("nude ", "") for p in NAKED * 3],
                         ["naked", "nude"])  # fmt: skip
    entries = comparison.concept_methods(enc, sae, pairs, {"snce": (1.0,), "topk": (1.0,)})
    strict = [e for e in entries if "strict" in e.method]
    assert len(strict) == 2 and all(e.obj is None and e.note and e.tolerance == 0.0 for e in strict)
    assert all(e.record()["neurons"] is None for e in strict)


def test_shipped_tables_record_every_rows_latents_and_tolerance():
    """The methods, nudity and stability tables that notebook 04 and docs/findings.md read: every row says
    which latents it edited and under which tolerance; a "strict" row used s^d = 0."""
    import json

    from snce_lib.resources import data_path

    for name in (
        "methods_table",
        "methods_table_full_clip",
        "methods_nudity",
        "methods_stability",
        "methods_stability_long",
    ):
        raw = json.loads(data_path("results", f"{name}.json").read_text())
        rows = raw["rows"] if isinstance(raw, dict) else raw
        assert rows, name
        for r in rows:
            assert {"neurons", "deconcept_tolerance"} <= set(r), (name, r["method"])
            if "strict" in r["method"]:
                assert r["deconcept_tolerance"] == 0.0 and (r["neurons"] or r.get("note")), (name, r["method"])
            if r["method"].startswith("snce") and r["neurons"]:
                assert len(r["neurons"]) == r["top_k"], (name, r["method"])
        if isinstance(raw, dict):  # stability: the selections too
            for c in raw["cosines"]:
                if c["selection"].startswith("snce"):
                    assert c["deconcept_tolerance"] is not None and all(x is None or x for x in c["latents"])


def test_an_empty_family_and_a_short_itd_are_said_not_dropped(setup, monkeypatch):
    """A family rule that keeps no latent gives a row with a note (it was once dropped without a word),
    and ItD with fewer than its 16 features runs and says how many it got."""
    import snce_lib.evaluation.comparison as comparison
    from snce_lib.concepts.pairs import ConceptPairs
    from snce_lib.concepts.ranking import Ranking

    _, enc, sae = setup
    monkeypatch.setattr(comparison, "latent_family", lambda *a, **k: [])
    real = comparison.select_neurons

    def few_itd(*a, **k):  # ItD's contrast passes five features only
        if k.get("method") == "itd":
            return None, {"ranking": Ranking("itd", np.arange(5), np.ones(5), {})}
        return real(*a, **k)

    monkeypatch.setattr(comparison, "select_neurons", few_itd)
    pairs = ConceptPairs("naked", NAKED * 3, [p.replace("naked ", "").replace("nude ", "") for p in NAKED * 3],
                         ["naked", "nude"])  # fmt: skip
    entries = comparison.concept_methods(enc, sae, pairs, {"snce": (1.0,), "topk": (1.0,)})
    (fam,) = [e for e in entries if e.method == "latent family, mode B"]
    assert fam.obj is None and "no latent" in fam.note
    (itd,) = [e for e in entries if e.method == "interpret-then-deactivate"]
    assert itd.obj is not None, itd.note
    assert itd.top_k == 5 and itd.note == "asked for 16 features, 5 pass ItD's contrast"
