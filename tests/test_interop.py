"""SAEs that travel: snce -> SAELens format -> snce is exact; SAELens and sparsify (optional, skipped
when not installed: `pip install ".[bench]"`) compute what snce computes from the same weights.
With SNCE_REQUIRE_PEERS=1 (CI's interop leg, which installs them) a missing peer fails instead."""

import importlib
import os

import pytest
import torch

from snce_lib.sae.formats import CheckpointError, from_saelens, from_sparsify, to_saelens, to_sparsify
from snce_lib.sae.model import SAEConfig, TopKSAE


def peer(name: str):
    if os.environ.get("SNCE_REQUIRE_PEERS") == "1":
        return importlib.import_module(name)
    return pytest.importorskip(name)


@pytest.fixture()
def sae():
    s = TopKSAE(SAEConfig(24, 96, 6, "offline", "encoder.layer.4", 4))
    s.reset_parameters(torch.Generator().manual_seed(0))
    with torch.no_grad():
        s.b_enc.normal_(0, 0.1)
        s.b_pre.normal_(0, 0.5)
    return s


def test_saelens_format_round_trip_is_exact(sae, tmp_path):
    back = from_saelens(to_saelens(sae, tmp_path / "sl"))
    for name, t in sae.state_dict().items():
        assert torch.equal(t, back.state_dict()[name]), name
    assert (back.cfg.encoder_id, back.cfg.layer, back.cfg.layer_index) == ("offline", "encoder.layer.4", 4)
    x = torch.randn(50, 24)
    assert torch.equal(sae.decode(*sae.encode(x)), back.decode(*back.encode(x)))


def test_other_saelens_variants_are_refused(sae, tmp_path):
    import json

    folder = to_saelens(sae, tmp_path / "sl")
    cfg = json.loads((folder / "cfg.json").read_text())
    (folder / "cfg.json").write_text(json.dumps({**cfg, "architecture": "jumprelu"}))
    with pytest.raises(CheckpointError, match="cannot compute the same way"):
        from_saelens(folder)


def test_saelens_opens_the_export_and_computes_the_same(sae, tmp_path):
    peer("sae_lens")
    from sae_lens import SAE

    theirs = SAE.load_from_disk(str(to_saelens(sae, tmp_path / "sl")))
    x = torch.randn(50, 24)
    with torch.no_grad():
        assert torch.allclose(theirs(x), sae.decode(*sae.encode(x)), atol=1e-5)


def test_a_sparsify_checkpoint_loads_and_encodes_as_sparsify_does(tmp_path):
    peer("sparsify")
    from sparsify import SparseCoder, SparseCoderConfig

    torch.manual_seed(0)
    coder = SparseCoder(24, SparseCoderConfig(num_latents=96, k=6), device="cpu")
    with torch.no_grad():
        coder.b_dec.normal_(0, 0.5)
    coder.save_to_disk(str(tmp_path / "sp"))
    ours = from_sparsify(tmp_path / "sp")
    x = torch.randn(50, 24)
    with torch.no_grad():
        enc = coder.encode(x)
        vals, idx = ours.encode(x)
        assert torch.equal(enc.top_indices.sort(-1).values, idx.long().sort(-1).values)
        assert torch.allclose(coder(x).sae_out, ours.decode(vals, idx), atol=1e-5)


def test_sparsify_format_round_trip_is_exact(sae, tmp_path):
    back = from_sparsify(to_sparsify(sae, tmp_path / "sp"))
    for name, t in sae.state_dict().items():
        assert torch.equal(t, back.state_dict()[name]), name
    assert (back.cfg.encoder_id, back.cfg.layer, back.cfg.layer_index) == ("offline", "encoder.layer.4", 4)


def test_sparsify_opens_the_export_and_encodes_as_we_do(sae, tmp_path):
    peer("sparsify")
    from sparsify import SparseCoder

    theirs = SparseCoder.load_from_disk(to_sparsify(sae, tmp_path / "sp"))
    x = torch.randn(50, 24)
    with torch.no_grad():
        enc, (vals, idx) = theirs.encode(x), sae.encode(x)
        assert torch.equal(enc.top_indices.sort(-1).values, idx.long().sort(-1).values)
        assert torch.allclose(theirs(x).sae_out, sae.decode(vals, idx), atol=1e-5)


def _hub_cache(monkeypatch, tmp_path):
    """A hub-shaped cache that the real hub client reads offline, for the peers' own hub loaders."""
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", True)
    from tests.test_hub import CacheHub

    return CacheHub(tmp_path / "hub")


def test_saelens_from_pretrained_loads_a_pushed_sae(sae, tmp_path, monkeypatch):
    """push_to_hub(format="saelens") into a hub-shaped cache; SAELens' own SAE.from_pretrained
    (release = the repository id, sae_id = the folder) downloads it offline and computes as we do."""
    peer("sae_lens")
    from sae_lens import SAE

    from snce_lib.sae.formats import push_to_hub

    push_to_hub(sae, "someone/minilm-saes", api=_hub_cache(monkeypatch, tmp_path), format="saelens")
    theirs = SAE.from_pretrained(release="someone/minilm-saes", sae_id="encoder.layer.4")
    x = torch.randn(50, 24)
    with torch.no_grad():
        vals, idx = sae.encode(x)
        dense = torch.zeros(50, 96).scatter_(1, idx.long(), vals)
        assert torch.allclose(theirs.encode(x), dense, atol=1e-5)
        assert torch.allclose(theirs(x), sae.decode(vals, idx), atol=1e-5)


def test_sparsify_load_from_hub_loads_a_pushed_sae(sae, tmp_path, monkeypatch):
    peer("sparsify")
    from sparsify import SparseCoder

    from snce_lib.sae.formats import push_to_hub

    push_to_hub(sae, "someone/minilm-saes", api=_hub_cache(monkeypatch, tmp_path), format="sparsify")
    theirs = SparseCoder.load_from_hub("someone/minilm-saes", hookpoint="encoder.layer.4")
    x = torch.randn(50, 24)
    with torch.no_grad():
        assert torch.allclose(theirs(x).sae_out, sae.decode(*sae.encode(x)), atol=1e-5)
