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


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory):
    """A tiny SD pipeline folder (text_encoder/, tokenizer/, ...) saved to disk, loaded back like SD's."""
    from snce_lib.models.pipelines import build_tiny_sd

    return build_tiny_sd(tmp_path_factory.mktemp("tiny_sd") / "sd")
