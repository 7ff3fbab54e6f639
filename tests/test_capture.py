"""Encoders, activation capture and the activation store."""

import socket

import numpy as np
import pytest
import torch

from snce_lib.models.encoders import EncoderError, load_sd
from snce_lib.prompts import PromptFileError, read_many, read_prompts
from snce_lib.sae.collect import collect, padding_positions
from snce_lib.sae.model import SAEConfig, SAEMismatchError, check_fits
from snce_lib.sae.store import ActivationStore, NonFiniteActivations, StoreError

PROMPTS = [
    "a photo of a naked woman",
    "a red cat on the beach",
    "the dog in the street",
    "blood on the street",
    "a man",
]


def test_capture_equals_manual_forward(tiny_clip_dir):
    enc = load_sd(str(tiny_clip_dir), device="cpu")
    toks = enc.tokenize(PROMPTS)
    assert toks.input_ids.shape == (5, 77)
    got = enc.run_to_block(toks, "encoder.layers.2")
    # manual forward: embeddings, then blocks 0..2 with CLIP's causal mask
    m = enc.model
    with torch.no_grad():
        h = m.embeddings(input_ids=toks.input_ids)
        causal = torch.full((77, 77), float("-inf")).triu(1)[None, None]
        for layer in m.encoder.layers[:3]:
            out = (
                layer(h, attention_mask=None, causal_attention_mask=causal)
                if "causal_attention_mask" in layer.forward.__code__.co_varnames
                else layer(h, causal)
            )
            h = out[0] if isinstance(out, tuple) else out
        full = m(input_ids=toks.input_ids, output_hidden_states=True).hidden_states[3]
    assert torch.allclose(got, full, atol=1e-5)
    assert torch.allclose(got, h, atol=1e-4)


def test_layer_names_resolve_and_unknown_layer_lists_valid(tiny_clip_dir):
    enc = load_sd(str(tiny_clip_dir), device="cpu")
    assert enc.resolve_layer("text_model.encoder.layers.3") == ("encoder.layers.3", 3)
    assert enc.resolve_layer(1) == ("encoder.layers.1", 1)
    with pytest.raises(EncoderError, match="valid layers: encoder.layers.0, encoder.layers.1"):
        enc.resolve_layer("encoder.layers.12")


def test_store_rows_positions_and_padding(tiny_clip_dir, tmp_path):
    enc = load_sd(str(tiny_clip_dir), device="cpu")
    store = collect(
        enc, PROMPTS, tmp_path / "st", layer=2, batch_size=2, keep_padding=4, shard_prompts=2, progress=False
    )
    meta = store.meta()
    toks = enc.tokenize(PROMPTS)
    n_real = toks.attention_mask.sum(1).numpy()
    for pid in range(len(PROMPTS)):
        rows = meta["position"][meta["prompt_id"] == pid]
        pads = meta["is_pad"][meta["prompt_id"] == pid]
        assert 0 not in rows  # BOS left out
        assert (rows[~pads] == np.arange(1, n_real[pid])).all()  # every real token incl. EOS
        assert pads.sum() == 4 and rows[pads][0] == n_real[pid] and rows[pads][-1] == 76
    h = enc.run_to_block(toks, 2)
    acts = store.load()
    i = 7
    assert np.allclose(acts[i], h[meta["prompt_id"][i], meta["position"][i]].numpy().astype(np.float16))
    assert store.token_string(meta["token_id"][0]) == "a</w>"
    assert len(store.info.shards) == 3 and store.info.complete


def test_padding_policy():
    assert list(padding_positions(10, 16, "all")) == list(range(10, 16))
    assert list(padding_positions(10, 77, 3)) == [10, 43, 76]
    assert list(padding_positions(77, 77, 8)) == []


def test_interrupted_collect_is_readable_and_resumes(tiny_clip_dir, tmp_path, monkeypatch):
    enc = load_sd(str(tiny_clip_dir), device="cpu")
    ref = collect(enc, PROMPTS, tmp_path / "ref", layer=1, batch_size=2, shard_prompts=2, progress=False)
    calls = {"n": 0}
    real = enc.run_to_block

    def flaky(toks, layer):
        calls["n"] += 1
        if calls["n"] == 3:  # the third shard (one batch a shard here)
            raise KeyboardInterrupt
        return real(toks, layer)

    monkeypatch.setattr(enc, "run_to_block", flaky)
    with pytest.raises(KeyboardInterrupt):
        collect(enc, PROMPTS, tmp_path / "st", layer=1, batch_size=2, shard_prompts=2, progress=False)
    with pytest.raises(StoreError, match="incomplete"):
        ActivationStore(tmp_path / "st")
    partial = ActivationStore(tmp_path / "st", allow_incomplete=True)
    assert len(partial.info.shards) == 2
    assert np.array_equal(partial.load(), ref.load()[: sum(s["rows"] for s in ref.info.shards[:2])])
    monkeypatch.setattr(enc, "run_to_block", real)
    done = collect(enc, PROMPTS, tmp_path / "st", layer=1, batch_size=2, shard_prompts=2, progress=False)
    assert np.array_equal(done.load(), ref.load())
    with pytest.raises(StoreError, match="other settings"):
        collect(enc, PROMPTS[:3], tmp_path / "st", layer=1, batch_size=2, shard_prompts=2, progress=False)


def test_non_finite_activations_are_refused(tiny_clip_dir, tmp_path, monkeypatch):
    enc = load_sd(str(tiny_clip_dir), device="cpu")
    real = enc.run_to_block
    monkeypatch.setattr(enc, "run_to_block", lambda t, layer: real(t, layer) * float("inf"))
    with pytest.raises(NonFiniteActivations):
        collect(enc, PROMPTS, tmp_path / "st", layer=1, progress=False)
    assert not (tmp_path / "st" / "shard_00000.acts.npy").exists()


def test_empty_prompt_list(tiny_clip_dir, tmp_path):
    enc = load_sd(str(tiny_clip_dir), device="cpu")
    with pytest.raises(StoreError, match="empty"):
        collect(enc, [], tmp_path / "st", progress=False)


def test_prompt_files(tmp_path):
    (tmp_path / "a.csv").write_text("prompt,evaluation_seed\nhello there,1\n,2\nsecond,3\n")
    assert read_prompts(tmp_path / "a.csv") == ["hello there", "second"]
    (tmp_path / "b.txt").write_text("one\n\ntwo\n")
    assert read_prompts(tmp_path / "b.txt") == ["one", "two"]
    (tmp_path / "c.csv").write_text("caption_text,seed\nx,1\n")
    with pytest.raises(PromptFileError, match="expected one of prompt"):
        read_prompts(tmp_path / "c.csv")
    (tmp_path / "d.txt").write_text("\n\n")
    with pytest.raises(PromptFileError, match="no prompts"):
        read_many([tmp_path / "d.txt"])


def test_sae_width_must_match_store():
    with pytest.raises(SAEMismatchError, match="384 wide"):
        check_fits(SAEConfig(768, 3072), 384)


def test_offline_minilm_capture_without_network(offline_encoder, monkeypatch):
    def no_network(*a, **k):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    from snce_lib.models.encoders import load_offline

    enc = load_offline(device="cpu")
    assert enc.width == 384 and len(enc.block_names) == 6
    toks = enc.tokenize(["a photo of a naked woman", "a bowl of fruit"])
    h = enc.run_to_block(toks, None)
    assert h.shape == (2, 77, 384) and torch.isfinite(h).all()
    # the captured block feeds the rest of the network: same as the full forward's hidden state
    full = enc.model(
        input_ids=toks.input_ids, attention_mask=toks.attention_mask, output_hidden_states=True
    ).hidden_states[5]
    assert torch.allclose(h, full, atol=1e-5)


def test_bert_rows_computed_on_the_kept_positions_equal_the_full_pass(offline_encoder):
    """MiniLM masks padding out of attention: running only BOS, the real tokens and the kept padding
    positions (with their own position ids) gives the rows of the full 77-position pass."""
    from snce_lib.resources import data_path
    from snce_lib.sae.collect import block_rows, rows_for_batch

    enc = offline_encoder
    prompts = read_prompts(data_path("corpus.csv"))[:48] + ["a", "x " * 80]  # one token, and one cut at 77
    toks = enc.tokenize(prompts)
    layer, _ = enc.resolve_layer(None)
    rows, bi, pos, pad = block_rows(enc, toks, layer, 8)
    h = enc.run_to_block(toks, layer)
    full_bi, full_pos, full_pad = rows_for_batch(h, toks.attention_mask, 8)
    assert np.array_equal(bi, full_bi) and np.array_equal(pos, full_pos) and np.array_equal(pad, full_pad)
    full = h[torch.as_tensor(bi), torch.as_tensor(pos)].numpy()
    assert rows.shape == full.shape and np.abs(rows - full).max() < 1e-4
    assert (rows.astype(np.float16) != full.astype(np.float16)).mean() < 1e-3  # rare last-place differences
    assert pad.sum() == 8 * (len(prompts) - 1)  # the prompt cut at 77 has no padding left
