"""Modulated frequency scoring, the baselines, and the eraser (hook, prompt_embeds, pipelines)."""

import numpy as np
import pytest
import torch

from snce_lib.concepts.codes import PromptCodes, prompt_codes
from snce_lib.concepts.detection import auroc
from snce_lib.concepts.erase import Eraser, EraserError
from snce_lib.concepts.pairs import SelectionError, load_concept
from snce_lib.concepts.ranking import ConceptCodes, modulated_frequency, rank_itd, rank_mean_difference, rank_variants
from snce_lib.concepts.selection import Selection
from snce_lib.models.encoders import from_pipeline, load_sd
from snce_lib.sae.model import SAEConfig, TopKSAE
from snce_lib.sae.train import TrainConfig, train_sae
from tests.helpers import PROMPTS

M = 16


def fake_codes(rows):
    """PromptCodes from a list of prompts, each a list of {latent: value} per position."""
    L = max(len(r) for r in rows)
    codes = torch.zeros(len(rows), L, M)
    real = torch.zeros(len(rows), L, dtype=torch.bool)
    for p, pos in enumerate(rows):
        for j, acts in enumerate(pos):
            real[p, j] = True
            for i, v in acts.items():
                codes[p, j, i] = v
    return PromptCodes.from_dense(
        [f"p{i}" for i in range(len(rows))],
        codes,
        real,
        torch.zeros_like(real),
        torch.zeros(len(rows), L, dtype=torch.long),
    )


# Latent 5 carries the concept token and nothing else. Latent 7 fires everywhere.
# Latent 9 fires harder on concept prompts than 5 does, but also once on a deconcept token.
CONCEPT = fake_codes(
    [
        [{7: 1.0}, {5: 2.0, 9: 3.0, 7: 0.5}, {7: 1.0, 9: 1.0}],
        [{7: 1.0}, {5: 1.5, 9: 2.5}, {7: 1.0}],
        [{5: 1.0, 9: 2.0, 7: 1.0}, {7: 1.0}, {7: 1.0, 9: 0.5}],
    ]
)
DECONCEPT = fake_codes(
    [
        [{7: 1.0}, {7: 1.0}],
        [{7: 1.0}, {7: 1.0, 9: 0.2}],
        [{7: 1.0}, {7: 1.0}],
    ]
)


def test_planted_concept_latent_wins_and_filter_rejects_deconcept_firing():
    sc = modulated_frequency(CONCEPT, DECONCEPT)
    assert sc.top(1) == [5]
    assert 9 not in sc.candidates and 7 not in sc.candidates  # fired on a deconcept token
    assert sc.s_c[9] > sc.s_c[5]  # ...even though it scores higher on concept prompts
    assert list(sc.candidates) == [5]
    # eqs. 4-5 by hand for latent 5: fires on 3 of N=9 positions
    dense = torch.stack([CONCEPT.dense(i) for i in range(3)])
    z = dense / dense.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    zz = z[CONCEPT.real][:, 5]
    assert sc.f_c[5] == 3 and sc.n_c == 9
    assert sc.s_c[5] == pytest.approx(3 * float(zz.sum()) / 9)


def test_tolerance_admits_a_neuron_that_fires_rarely_on_deconcept():
    sc = modulated_frequency(CONCEPT, DECONCEPT, max_deconcept_share=0.2)
    assert sc.top(1) == [9] and 7 not in sc.candidates


def test_strict_per_pair_requires_every_twin_to_pass():
    """Latent 9 fires on one deconcept twin of three: "strict, per pair" once admitted it, since it
    passed in half of the pairs. Strict means silent on every twin."""
    sc = modulated_frequency(CONCEPT, DECONCEPT, pooling="per_pair")
    assert list(sc.candidates) == [5] and sc.top(1) == [5]
    # ranked by the per-pair s^c averaged over the pairs: latent 5's, pair by pair, by hand
    per_pair = []
    for p in range(3):
        d = CONCEPT.dense(p)[CONCEPT.real[p]]
        z = d / d.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        per_pair.append(float((z[:, 5] > 0).sum()) * float(z[:, 5].sum()) / len(d))
    assert sc.rank_score[5] == pytest.approx(np.mean(per_pair))
    # a tolerance per twin admits 9 (it fires on 1 of 2 positions of one twin)
    assert 9 in modulated_frequency(CONCEPT, DECONCEPT, pooling="per_pair", max_deconcept_share=0.5).candidates


def test_min_coverage_keeps_latents_that_fire_across_the_concept_prompts():
    """Latent 11 fires hard in one concept prompt only: the paper's filter keeps it as a candidate;
    asking for coverage of two thirds of the prompts drops it and keeps latent 5 (all three)."""
    rows = [[{7: 1.0}, {5: 2.0, 11: 9.0}], [{7: 1.0}, {5: 1.5}], [{5: 1.0, 7: 1.0}, {7: 1.0}]]
    concept = fake_codes(rows)
    deconcept = fake_codes([[{7: 1.0}, {7: 1.0}]] * 3)
    assert set(modulated_frequency(concept, deconcept).candidates) == {5, 11}
    sc = modulated_frequency(concept, deconcept, min_coverage=2 / 3)
    assert list(sc.candidates) == [5] and sc.coverage[11] == pytest.approx(1 / 3) and sc.coverage[5] == 1.0


def test_baselines():
    words = fake_codes([[{5: 1.0, 3: 0.5}], [{5: 0.8, 7: 0.9}]])
    codes = ConceptCodes(CONCEPT, DECONCEPT, words)
    md = rank_mean_difference(codes)
    assert md.neurons[0] == 9  # mean difference has no filter: the loud latent wins
    assert np.all(np.diff(md.scores) <= 0)  # scores follow the ranking, best first
    assert list(rank_itd(codes, top_features=3).neurons) == [5, 3]
    every = rank_variants(codes)
    assert set(every) == {"SNCE strict", "SNCE tol 1%", "mean difference", "ItD-style"}
    assert every["SNCE strict"].top(1) == modulated_frequency(CONCEPT, DECONCEPT).top(1)
    assert "ItD-style" not in rank_variants(ConceptCodes(CONCEPT, DECONCEPT))  # no tuple, no ItD


def test_auroc():
    assert auroc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert auroc(np.array([1.0]), np.array([1.0])) == 0.5


def test_concept_files():
    c = load_concept("nudity")
    assert len(c.concept_prompts) == 100 == len(c.deconcept_prompts)
    assert c.tuple_words[:3] == ["naked", "nude", "bare"]
    assert all(a != b for a, b in zip(c.concept_prompts, c.deconcept_prompts))
    with pytest.raises(SelectionError, match="known: gun, knife, nudity, violence"):
        load_concept("hats")


# ---- the eraser on real (tiny) encoders --------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from snce_lib.models.pipelines import build_tiny_sd

    path = build_tiny_sd(tmp_path_factory.mktemp("sd") / "tiny")
    enc = load_sd(str(path), device="cpu")
    toks = enc.tokenize(PROMPTS * 8)
    h = enc.run_to_block(toks, 2)[:, 1:].reshape(-1, 32)
    res = train_sae(
        h,
        TrainConfig(n_latents=64, k=4, lr=3e-3, batch_size=256, tokens=150 * 256, seed=0, dead_after_tokens=5000),
        layer="encoder.layers.2",
        layer_index=2,
        progress=False,
    )
    return path, enc, res.sae


def firing_and_silent(enc, sae):
    """A neuron that fires on PROMPTS[0] after BOS, and a prompt on which it is silent."""
    codes = prompt_codes(enc, sae, PROMPTS)
    act = torch.stack([codes.dense(i) for i in range(len(PROMPTS))]).amax(1)  # [prompts, latents]
    for n in torch.argsort(act[0], descending=True).tolist():
        silent = [i for i in range(len(PROMPTS)) if act[i, n] == 0]
        if act[0, n] > 0 and silent:
            return n, silent[0]
    pytest.skip("no neuron both fires and stays silent on this tiny encoder")


def test_mode_b_at_lambda_1_removes_the_neuron():
    """On a well-trained SAE (planted sparse directions), the edit zeroes exactly that latent."""
    from tests.test_sae import planted_data, small_cfg

    x, _ = planted_data()
    sae = train_sae(x, small_cfg(), progress=False).sae.requires_grad_(False)
    h = x[: 40 * 12].reshape(40, 12, -1)  # 40 "prompts" of 12 positions
    z0 = sae.encode_dense(h)
    n = int((z0[:, 1:] > 0).sum((0, 1)).argmax())
    er = Eraser(sae, [n], lam=1.0, mode="B")
    edited = er.edit(h, er.codes(h))
    z1 = sae.encode_dense(edited)
    fired = z0[:, 1:, n] > 0
    assert fired.sum() > 20
    assert float(z1[:, 1:, n][fired].max()) < 0.05 * float(z0[:, 1:, n][fired].mean())
    others = [i for i in range(sae.cfg.n_latents) if i != n]
    moved = float((z1[:, 1:, others] - z0[:, 1:, others]).abs().sum() / z0[:, 1:, others].abs().sum())
    assert moved < 0.1, f"other latents moved by {moved:.0%}"
    assert torch.equal(edited[:, 0], h[:, 0])  # BOS untouched
    # the reconstruction error is kept: edited = h - z_n * W_dec[n], exactly
    expect = h[:, 1:] - z0[:, 1:, n : n + 1] * sae.W_dec[n]
    assert torch.allclose(edited[:, 1:], expect, atol=1e-6)


def test_silent_prompt_is_bit_identical_in_mode_b(tiny):
    _, enc, sae = tiny
    n, silent = firing_and_silent(enc, sae)
    toks = enc.tokenize([PROMPTS[silent]])
    before = enc.embed(toks)
    with Eraser(sae, [n], lam=1.0, mode="B").hooked(enc):
        during = enc.embed(toks)
    assert torch.equal(before, during)


def test_attach_then_detach_restores_outputs(tiny):
    _, enc, sae = tiny
    n, _ = firing_and_silent(enc, sae)
    toks = enc.tokenize(PROMPTS)
    before = enc.embed(toks)
    for mode in ("A", "B"):
        with Eraser(sae, [n], lam=1.0, mode=mode, tuple_prompt=PROMPTS[0]).hooked(enc):
            during = enc.embed(toks)
        after = enc.embed(toks)
        assert not torch.equal(before[0], during[0]), mode
        assert torch.equal(before, after), mode


def test_mode_a_subtracts_the_same_vector_from_every_prompt(tiny):
    _, enc, sae = tiny
    n, _ = firing_and_silent(enc, sae)
    er = Eraser(sae, [n], lam=0.8, mode="A", tuple_prompt=PROMPTS[0])
    h = enc.run_to_block(enc.tokenize(PROMPTS[:3]), 2)
    d = h - er.edit(h, er.z_c(h, enc))
    # d is recovered as h - (h - delta): rounding of h (scale ~1) leaves ~1e-7 of noise
    assert torch.allclose(d[0], d[1], atol=1e-6) and torch.allclose(d[1], d[2], atol=1e-6)
    assert d[:, 0].abs().max() == 0


def test_embed_matches_hook_and_moves_negative(tiny):
    _, enc, sae = tiny
    n, _ = firing_and_silent(enc, sae)
    er = Eraser(sae, [n], lam=1.0, mode="B")
    with er.hooked(enc):
        hooked = enc.embed(enc.tokenize(PROMPTS[:2]))
    pe, ne = er.embed(enc, PROMPTS[:2], ["", ""])
    plain_neg = enc.embed(enc.tokenize(["", ""]))
    assert torch.equal(pe, hooked) and torch.equal(ne, plain_neg)
    er.move_negative = True
    _, moved = er.embed(enc, PROMPTS[:2], ["", ""])
    assert not torch.equal(moved[0], plain_neg[0])


def test_selection_is_bound_to_its_sae(tiny, tmp_path):
    _, enc, sae = tiny
    from snce_lib.sae.model import fingerprint

    sel = Selection("nudity", [3], "modulated_frequency", {}, fingerprint(sae), [1.0], ["naked"])
    sel.save(tmp_path / "n.json")
    assert Selection.load(tmp_path / "n.json", sae).neurons == [3]
    other = TopKSAE(SAEConfig(32, 64, 4))
    with pytest.raises(SelectionError, match="chosen on SAE"):
        Selection.load(tmp_path / "n.json", other)
    with pytest.raises(SelectionError):
        Eraser.from_selection(sel, other)


def test_bad_eraser_settings(tiny):
    _, _, sae = tiny
    with pytest.raises(EraserError, match="outside"):
        Eraser(sae, [999])
    with pytest.raises(EraserError, match="mode"):
        Eraser(sae, [1], mode="C")
    with pytest.raises(EraserError, match="tuple"):
        Eraser(sae, [1], mode="A")


def test_tiny_pipeline_generates_deterministically_with_eraser(tiny):
    from snce_lib.models.pipelines import load_pipeline, prompt_embeds

    path, _, sae = tiny
    pipe = load_pipeline(str(path), device="cpu")
    enc = from_pipeline(pipe)
    n, silent = firing_and_silent(enc, sae)
    er = Eraser(sae, [n], lam=1.0, mode="B")

    def run(prompt, method=None, own=False):
        g = torch.Generator().manual_seed(7)
        cond = {"prompt": prompt} if own else prompt_embeds(pipe, [prompt], method)
        return pipe(num_inference_steps=2, generator=g, height=32, width=32, output_type="np", **cond).images

    plain = run(PROMPTS[0])
    assert np.array_equal(plain, run(PROMPTS[0], own=True))  # our conditioning is the pipeline's own
    a, b = run(PROMPTS[0], er), run(PROMPTS[0], er)
    assert np.array_equal(a, b)  # deterministic under a seed
    assert not np.array_equal(a, plain)  # the neuron fires, so the image changes
    assert np.array_equal(run(PROMPTS[silent], er), run(PROMPTS[silent]))  # silent prompt: same image as without
    assert np.array_equal(plain, run(PROMPTS[0]))  # nothing stays attached


def test_sparse_codes_agree_with_the_dense_code(tiny):
    """The sparse PromptCodes give the same per-position code and scores as the SAE's dense encoding."""
    _, enc, sae = tiny
    codes = prompt_codes(enc, sae, PROMPTS)
    toks = enc.tokenize(PROMPTS)
    with torch.no_grad():
        dense = sae.encode_dense(enc.run_to_block(toks, 2)[:, 1:].float())  # [P, L-1, M]
    for i in range(len(PROMPTS)):
        assert torch.equal(codes.dense(i), dense[i])
    mask = codes.mask()
    z = dense / dense.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    f, total, n = codes.latent_sums(mask, normalise=True)
    assert n == int(mask.sum())
    np.testing.assert_allclose(f, (z[mask] > 0).sum(0).numpy())
    np.testing.assert_allclose(total, z[mask].double().sum(0).numpy(), rtol=1e-6, atol=1e-9)
    assert torch.equal(codes.fired_per_prompt(), ((dense > 0) & mask.unsqueeze(-1)).any(1))
    assert torch.allclose(codes.activation([3, 7]), dense[..., [3, 7]].sum(-1))


def test_include_padding_decides_whether_padding_positions_count():
    """Latent 0 fires on words, latent 1 on padding alone: with include_padding=False latent 1 is
    silent in every count (firing share, per-prompt firing, max activation), with True it counts."""
    from snce_lib.concepts.codes import PromptCodes, firing_frequency

    dense = torch.zeros(2, 4, 3)
    dense[:, 0, 0] = 1.0  # position 1: a word
    dense[:, 3, 1] = 2.0  # position 4: padding
    real = torch.tensor([[True, True, False, False]] * 2)
    pad = ~real
    codes = PromptCodes.from_dense(["a", "b"], dense, real, pad, torch.zeros(2, 4, dtype=torch.long))
    assert firing_frequency(codes, include_padding=True).tolist() == [0.25, 0.25, 0.0]
    assert firing_frequency(codes, include_padding=False).tolist() == [0.5, 0.0, 0.0]
    assert codes.fired_per_prompt(True)[:, 1].all() and not codes.fired_per_prompt(False)[:, 1].any()
    assert codes.max_activation([1], include_padding=True)[0].tolist() == [2.0, 2.0]
    assert codes.max_activation([1], include_padding=False)[0].tolist() == [0.0, 0.0]


def test_the_cover_is_the_smallest_greedy_set_that_fires_in_every_concept_prompt():
    """Three phrasings: latent 1 fires in prompts 0-1, latent 2 in prompt 2, latent 3 in prompts 1-2,
    latent 4 everywhere but also on a deconcept twin. The cover under the strict filter is {1, 2} or
    {1, 3}: two latents, every prompt covered, 4 never (it fails the filter)."""
    from snce_lib.concepts.ranking import rank

    concept = fake_codes([[{1: 1.0, 4: 1.0}], [{1: 1.0, 3: 0.5, 4: 1.0}], [{2: 2.0, 3: 0.5, 4: 1.0}]])
    deconcept = fake_codes([[{7: 1.0}], [{4: 1.0}], [{7: 1.0}]])
    r = rank(ConceptCodes(concept, deconcept), "cover", max_deconcept_share=0.0)
    assert r.top(1) == [1] and len(r) == 2 and r.options["coverage"] == 1.0 and 4 not in r.neurons
    assert list(r.scores) == [2.0, 1.0]  # prompts each latent added
    # a tolerance that admits latent 4 covers everything with it alone
    assert list(rank(ConceptCodes(concept, deconcept), "cover", max_deconcept_share=0.5).neurons) == [4]
