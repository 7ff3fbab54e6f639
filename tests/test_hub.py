"""SAEs on the hub, offline: push_to_hub writes the checkpoint and a model card in one upload;
from_pretrained reads it back from a hub-shaped local cache (the real hub client resolves it), also
an SAELens-format SAE kept in a repository's sub-folder; a repository not in the cache is one clear error."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from snce_lib.models.hubcache import REVISION
from snce_lib.sae import formats
from snce_lib.sae.formats import CheckpointError, from_pretrained, model_card, push_to_hub, to_saelens
from snce_lib.sae.model import TopKSAE
from snce_lib.sae.train import TrainConfig, train_sae


class CacheHub:
    """Stands in for HfApi: an upload becomes the repository's snapshot in a hub-shaped cache."""

    def __init__(self, cache: Path):
        self.cache, self.created, self.uploads = cache, [], []

    def create_repo(self, repo_id, private=False, exist_ok=False):
        self.created.append((repo_id, private, exist_ok))

    def upload_folder(self, repo_id, folder_path, commit_message):
        repo = self.cache / f"models--{repo_id.replace('/', '--')}"
        shutil.copytree(folder_path, repo / "snapshots" / REVISION, dirs_exist_ok=True)
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / "main").write_text(REVISION)
        self.uploads.append(sorted(p.name for p in Path(folder_path).iterdir()))
        return f"https://huggingface.co/{repo_id}/commit/{REVISION}"


@pytest.fixture(scope="module")
def trained():
    rows = np.random.default_rng(0).normal(size=(3000, 16)).astype(np.float32)
    data = {"encoder": "CompVis/stable-diffusion-v1-4", "layer": "text_model.encoder.layers.9", "prompts": 120,
            "rows": 3000, "keep_padding": "8", "max_length": 77, "prompts_sha256": "ab" * 32}  # fmt: skip
    cfg = TrainConfig(expansion=4, k=4, batch_size=256, tokens=2048, eval_rows=512)
    return train_sae(rows, cfg, encoder_id="CompVis/stable-diffusion-v1-4", layer="text_model.encoder.layers.9",
                     layer_index=9, progress=False, data_info=data).sae  # fmt: skip


def test_push_then_from_pretrained_round_trip(trained, tmp_path):
    hub = CacheHub(tmp_path / "hub")
    url = push_to_hub(trained, "someone/sd14-block9-sae", api=hub)
    assert url.endswith(REVISION) and hub.created == [("someone/sd14-block9-sae", False, True)]
    assert hub.uploads == [["README.md", "cfg.json", "metrics.json", "sae.safetensors"]]
    back = from_pretrained("someone/sd14-block9-sae", cache_dir=tmp_path / "hub")
    for name, t in trained.state_dict().items():
        assert torch.equal(t, back.state_dict()[name]), name
    assert back.cfg == trained.cfg and back.metrics["fvu"] == trained.metrics["fvu"]


def test_model_card_states_encoder_block_data_budget_and_metrics(trained):
    card = model_card(trained, "someone/sd14-block9-sae")
    m = trained.metrics
    assert card.startswith("---\nlibrary_name: snce\n") and "base_model: CompVis/stable-diffusion-v1-4" in card
    assert "block `text_model.encoder.layers.9` (index 9)" in card
    assert "prompts: 120, token rows: 3,000" in card and "ab" * 32 in card
    assert f"token budget: {m['tokens_seen']:,} token vectors in {m['steps']} steps of 256" in card
    assert f"(FVU): {m['fvu']:.4f} on {m['eval_rows']:,} rows" in card
    assert 'sae = from_pretrained("someone/sd14-block9-sae")' in card


def test_a_card_without_training_metrics_says_not_recorded():
    from snce_lib.sae.model import SAEConfig

    card = model_card(TopKSAE(SAEConfig(8, 32, 4, "offline")))
    assert "base_model" not in card and "token budget: not recorded" in card and "(FVU): not recorded" in card


def test_an_saelens_sae_in_a_subfolder_loads_by_repo_id(trained, tmp_path):
    repo = tmp_path / "hub" / "models--lab--saes"
    to_saelens(trained, repo / "snapshots" / REVISION / "block_9")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(REVISION)
    back = from_pretrained("lab/saes", subfolder="block_9", cache_dir=tmp_path / "hub")
    x = torch.randn(20, 16)
    assert torch.equal(back.decode(*back.encode(x)), trained.decode(*trained.encode(x)))
    assert formats.from_pretrained(repo / "snapshots" / REVISION, subfolder="block_9").cfg.n_latents == 64


def test_a_repository_missing_offline_is_one_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="neither a folder here .* nor in the local hub cache"):
        from_pretrained("nobody/no-such-sae", cache_dir=tmp_path / "empty")
    with pytest.raises(CheckpointError, match="no SAE folder .*missing/folder.* it does not exist"):
        from_pretrained(str(tmp_path / "missing" / "folder"))


def test_a_mistyped_relative_folder_is_reported_missing_not_sent_to_the_hub(tmp_path, monkeypatch):
    """ "runs/sae" has the shape of a repository id; with ./runs there it is a folder that is not."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "offline").mkdir(parents=True)
    with pytest.raises(CheckpointError, match=r"no SAE folder runs/sae .* it does not exist$"):
        from_pretrained("runs/sae", cache_dir=tmp_path / "empty")
    with pytest.raises(CheckpointError, match="not a hub repository id"):
        from_pretrained("sae")
    (tmp_path / "runs" / "weights.safetensors").write_bytes(b"")
    with pytest.raises(CheckpointError, match="is a file; pass the folder"):
        from_pretrained("runs/weights.safetensors")
    with pytest.raises(CheckpointError, match="has no folder 'block_9'"):
        from_pretrained(tmp_path / "runs", subfolder="block_9")


@pytest.mark.parametrize("fmt", ["saelens", "sparsify"])
def test_push_in_another_layout_puts_the_sae_in_its_folder_and_loads_back(trained, tmp_path, fmt):
    hub = CacheHub(tmp_path / "hub")
    push_to_hub(trained, "someone/sd14-saes", api=hub, format=fmt)
    weights = "sae_weights.safetensors" if fmt == "saelens" else "sae.safetensors"
    assert hub.uploads == [["README.md", "text_model.encoder.layers.9"]]
    snap = tmp_path / "hub" / "models--someone--sd14-saes" / "snapshots" / REVISION
    assert sorted(p.name for p in (snap / "text_model.encoder.layers.9").iterdir()) == sorted(["cfg.json", weights])
    card = (snap / "README.md").read_text()
    assert f"{fmt} layout, in the folder `text_model.encoder.layers.9`" in card
    back = from_pretrained("someone/sd14-saes", subfolder="text_model.encoder.layers.9", cache_dir=tmp_path / "hub")
    x = torch.randn(20, 16)
    assert torch.allclose(back.decode(*back.encode(x)), trained.decode(*trained.encode(x)), atol=1e-6)
    assert (back.cfg.encoder_id, back.cfg.layer, back.cfg.layer_index) == (
        "CompVis/stable-diffusion-v1-4", "text_model.encoder.layers.9", 9)  # fmt: skip


def test_a_bad_layout_or_folder_name_fails_before_the_repository_is_made(trained, tmp_path):
    hub = CacheHub(tmp_path / "hub")
    with pytest.raises(ValueError, match="format must be one of snce, saelens, sparsify"):
        push_to_hub(trained, "someone/x", api=hub, format="dictionary_learning")
    with pytest.raises(ValueError, match="relative folder name"):
        push_to_hub(trained, "someone/x", api=hub, format="saelens", sae_id="../up")
    assert hub.created == [] and hub.uploads == []
