import os
from pathlib import Path

import pytest
import torch

# No test may reach a model hub: everything runs on tiny configs or the packaged MiniLM.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
torch.set_num_threads(2)

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def offline_encoder():
    from snce_lib.models.encoders import load_offline

    return load_offline(device="cpu")


@pytest.fixture(scope="module")
def minilm_random_sae():
    """(the packaged MiniLM at 32 tokens, a seeded random 256-latent SAE on its block 4): detectors and
    selection options scored by hand against the library."""
    from snce_lib.models.encoders import load_offline
    from snce_lib.sae.model import SAEConfig, TopKSAE

    torch.manual_seed(0)
    enc = load_offline(fp16=False, max_length=32)
    sae = TopKSAE(SAEConfig(d_in=384, n_latents=256, k=8, encoder_id="offline", layer="encoder.layer.4", layer_index=4))
    return enc, sae.requires_grad_(False)


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory):
    """A tiny SD pipeline folder (text_encoder/, tokenizer/, ...) saved to disk, loaded back like SD's."""
    from snce_lib.models.pipelines import build_tiny_sd

    return build_tiny_sd(tmp_path_factory.mktemp("tiny_sd") / "sd")


@pytest.fixture(scope="module")
def one_thread():
    """For modules of tiny models (`pytestmark = pytest.mark.usefixtures("one_thread")`): a second thread
    only waits on the first (and on a busy machine, a lot)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
