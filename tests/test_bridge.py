"""Notebook 01's bridge: dead latents by window, latents against coordinates, and what splicing
the SAE into the encoder costs downstream beside zero- and mean-ablation."""

import numpy as np
import pytest
import torch

from snce_lib.concepts.readability import Units, chance_entropy, content_units, entropy_bits, read_units, trimmed
from snce_lib.sae.dead import dead_share_by_window, expected_dead_share
from snce_lib.sae.fidelity import Splice, fidelity, mean_ablation, output_cosines, sae_splice, wilson, zero_ablation
from snce_lib.sae.model import SAEConfig, TopKSAE
from tests.helpers import PROMPTS


def test_dead_share_by_window_counts_latents_silent_through_a_window():
    """Latent j of 8 fires on every row whose index is a multiple of 2**j (k = 1, the bias decides):
    through a window of w random rows a latent firing on a share f is silent with probability (1-f)^w."""
    sae = TopKSAE(SAEConfig(8, 8, 1))
    with torch.no_grad():
        sae.W_enc.copy_(torch.eye(8))
        sae.b_enc.zero_()
        sae.b_pre.zero_()
    rows = torch.zeros(4096, 8)
    for i in range(4096):
        j = max(b for b in range(8) if i % 2**b == 0)  # the rarest latent this row can fire
        rows[i, j] = 1.0
    freq = np.bincount(rows.argmax(1).numpy(), minlength=8) / 4096
    got = dead_share_by_window(sae, rows, (1, 16, 4096))
    assert got[4096] == 0.0 and got[1] == pytest.approx(7 / 8)
    assert got[16] == pytest.approx(expected_dead_share(freq, 16), abs=0.05)
    with pytest.raises(ValueError, match="window"):
        dead_share_by_window(sae, rows, (5000,))


def test_splicing_the_identity_leaves_the_output_and_ablations_move_it(minilm_random_sae):
    enc, sae = minilm_random_sae
    ident = Splice("identity", sae.cfg.layer, lambda h: h)
    rows = output_cosines(enc, PROMPTS, [ident, zero_ablation(sae.cfg.layer)])
    assert np.allclose(rows["identity"]["words"], 1.0, atol=1e-5)
    assert rows["zero-ablation"]["words"].max() < 0.9
    table = {
        r["replaced by"]: r for r in fidelity(enc, PROMPTS, [ident, mean_ablation(sae.cfg.layer, torch.zeros(384))])
    }
    assert table["identity"]["cosine, words"] == pytest.approx(1.0, abs=1e-5) and table["identity"]["prompts"] == 8
    # mean-ablation with a zero mean is zero-ablation
    assert table["mean-ablation"]["cosine, words"] == pytest.approx(
        float(rows["zero-ablation"]["words"].mean()), abs=1e-5
    )


def test_an_sae_that_reconstructs_exactly_splices_in_unnoticed(minilm_random_sae):
    """With k = width and an orthonormal dictionary and big enough bias, decode(encode(h)) = h... on the
    positive part: a TopK SAE holding +e_i and -e_i reconstructs any vector exactly."""
    enc, _ = minilm_random_sae
    d = enc.width
    sae = TopKSAE(SAEConfig(d, 2 * d, d, layer="encoder.layer.4", layer_index=4))
    with torch.no_grad():
        eye = torch.eye(d)
        sae.W_enc.copy_(torch.cat([eye, -eye]))
        sae.W_dec.copy_(torch.cat([eye, -eye]))
        sae.b_enc.zero_()
        sae.b_pre.zero_()
    (row,) = fidelity(enc, PROMPTS, [sae_splice(sae)])
    assert row["cosine, words"] == pytest.approx(1.0, abs=1e-4)


def test_trimmed_tokens_leave_every_real_position_as_it_was(minilm_random_sae):
    enc, sae = minilm_random_sae
    toks = enc.tokenize(PROMPTS)
    full = enc.run_to_block(toks, sae.cfg.layer)
    short = enc.run_to_block(trimmed(toks), sae.cfg.layer)
    n = short.shape[1]
    real = toks.attention_mask[:, :n].bool()
    assert n < full.shape[1] and torch.allclose(full[:, :n][real], short[real], atol=1e-5)


def _units(words, latents, coords):
    vocab = [f"w{i}" for i in range(int(max(words)) + 1)]
    return Units(torch.tensor(latents, dtype=torch.float32), torch.tensor(coords, dtype=torch.float32),
                 np.array(words), np.arange(len(words)) // 2, vocab)  # fmt: skip


def test_a_word_detector_latent_scores_its_label_and_a_mixed_coordinate_does_not():
    """Latent 0 fires exactly on word 0; coordinate 0 grows with position, whatever the word."""
    rng = np.random.default_rng(0)
    words = rng.integers(0, 10, 4000)
    lat = (words == 0).astype(float)[:, None] * (1 + rng.random(4000))[:, None]
    coord = np.linspace(-1, 1, 4000)[:, None] + 0.01 * rng.standard_normal((4000, 1))
    (latent, coordinate) = read_units(_units(words, lat, coord))
    assert latent["kind"] == "latent" and latent["label"].startswith("w0") and latent["label_share"] == 1.0
    assert latent["entropy"] == 0.0
    assert coordinate["label_share"] == pytest.approx(coordinate["chance"], abs=0.15) and coordinate["entropy"] > 2


def test_entropy_bits():
    assert entropy_bits(np.array([3, 3, 3])) == 0.0 and entropy_bits(np.array([1, 2, 3, 4])) == pytest.approx(2.0)


def test_content_units_keep_content_words_of_each_prompt(minilm_random_sae):
    enc, sae = minilm_random_sae
    units = content_units(enc, sae, PROMPTS)
    words = {units.vocabulary[w] for w in units.words}
    assert {"naked", "woman", "beach", "car", "knife"} <= words and not words & {"a", "the", "[PAD]", "on"}
    assert units.latents.shape == (len(units.words), 256) and units.coordinates.shape == (len(units.words), 384)
    assert ((units.latents > 0).sum(1) <= 8).all()
    # the codes are the SAE's codes of the coordinates
    assert torch.allclose(units.latents, sae.encode_dense(units.coordinates), atol=1e-4)
    assert set(np.unique(units.prompt)) == set(range(len(PROMPTS)))


def test_wilson_interval_holds_the_share_and_stays_in_bounds():
    lo, hi = wilson(8, 16)
    assert lo < 0.5 < hi and hi - lo == pytest.approx(0.44, abs=0.03)
    assert wilson(0, 16)[0] == pytest.approx(0.0, abs=1e-12) and 0 < wilson(0, 16)[1] < 0.25
    assert wilson(16, 16)[1] == pytest.approx(1.0)


def test_chance_entropy_is_what_random_positions_read():
    rng = np.random.default_rng(1)
    mixed = _units(rng.integers(0, 50, 2000), np.zeros((2000, 1)), np.zeros((2000, 1)))
    one = _units(np.zeros(2000, dtype=int), np.zeros((2000, 1)), np.zeros((2000, 1)))
    assert chance_entropy(one) == 0.0 and chance_entropy(mixed) > 3.5
