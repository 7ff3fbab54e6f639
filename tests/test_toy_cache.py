"""The toy pipeline does not run a batch again whose images are already decided: same conditioning, seeds,
steps and guidance give the earlier images, and the lambda x mode table comes out bit for bit as without it."""

import numpy as np
import pytest

from snce_lib.models.toy.model import load_toy_pipeline
from snce_lib.resources import data_path

have_model = pytest.mark.skipif(not data_path("toy", "unet.safetensors").exists(), reason="no committed toy model")


class Counting:
    """Counts UNet forward passes."""

    def __init__(self, unet):
        self.unet, self.calls = unet, 0

    def __call__(self, *a, **kw):
        self.calls += 1
        return self.unet(*a, **kw)

    def __getattr__(self, name):
        return getattr(self.unet, name)


@have_model
def test_a_batch_with_the_same_conditioning_is_not_run_again():
    from snce_lib.concepts.erase import Eraser
    from snce_lib.sae.model import SAEConfig, TopKSAE

    pipe = load_toy_pipeline()
    pipe.unet = counter = Counting(pipe.unet)
    prompts, seeds = ["a red circle", "a blue square", "a green triangle"], [1, 2, 3]
    first = pipe.generate(prompts, seeds, steps=4)
    calls = counter.calls
    assert calls == 4  # one UNet pass a step (guidance batches both halves)
    again = pipe.generate(prompts, seeds, steps=4)
    assert counter.calls == calls and np.array_equal(first, again)
    # lambda 0 leaves the features as they were: the same batch, not run again
    sae = TopKSAE(SAEConfig(pipe.encoder.width, 64, 4)).requires_grad_(False)
    assert np.array_equal(pipe.generate(prompts, seeds, steps=4, method=Eraser(sae, [0, 1], 0.0, "B")), first)
    assert counter.calls == calls
    # other seeds, steps or guidance, or an edit that changes the features, are run
    pipe.generate(prompts, [4, 5, 6], steps=4)
    pipe.generate(prompts, seeds, steps=4, guidance=5.0)
    assert counter.calls == calls + 8
    fresh = load_toy_pipeline()  # no cache: the same images computed anew
    assert np.array_equal(fresh.generate(prompts, seeds, steps=4), first)


@have_model
def test_a_weight_update_is_never_served_from_the_cache():
    import torch

    pipe = load_toy_pipeline()
    before = pipe.generate(["a red circle"], [1], steps=3)
    with torch.no_grad():
        next(pipe.unet.parameters()).mul_(1.5)
    assert not np.array_equal(pipe.generate(["a red circle"], [1], steps=3), before)


@have_model
def test_the_lambda_table_is_bit_for_bit_the_same_with_the_cache(tmp_path):
    from snce_lib.evaluation.toy import run_experiment, train_toy_sae

    sae = train_toy_sae(tmp_path / "toy", tokens=50_000, n_captions=800, progress=False, with_corpus=False)
    from snce_lib.models.toy.detector import ToyDetector

    det = ToyDetector.load()
    cached = load_toy_pipeline()
    uncached = load_toy_pipeline()
    real = uncached.generate

    def no_cache(*a, **kw):
        uncached._made = {}
        return real(*a, **kw)

    uncached.generate = no_cache
    kw = {"lams": (0.0, 1.0), "modes": ("A", "B"), "n": 4, "steps": 3, "keep_images": False}
    a = run_experiment(cached, det, sae, "red", **kw).rows
    b = run_experiment(uncached, det, sae, "red", **kw).rows
    assert a == b
    assert len(cached._made) < 5 * 3  # of 5 configurations x 3 parts, some batches were served again
