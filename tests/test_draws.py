"""What a feature draws, in both toy worlds: the ablated image equals the original where the feature is
silent (mode B at lambda 1 is exact), and a boost of a colour direction draws that colour."""

import numpy as np
import pytest
import torch

from snce_lib.evaluation.draws import feature_boost, feature_strip
from snce_lib.models.toy.model import load_world, world_folder
from snce_lib.sae.model import SAEConfig, TopKSAE


@pytest.mark.parametrize("world", ["minilm", "clip"])
def test_a_strip_in_each_toy_world(world):
    if not (world_folder(world) / "toy.json").exists():
        pytest.skip(f"no committed {world} world")
    pipe = load_world(world)
    enc = pipe.encoder
    torch.manual_seed(0)
    layer = enc.block_names[4]
    sae = TopKSAE(SAEConfig(enc.width, 64, 4, "toy", layer, 4)).requires_grad_(False)
    prompts = ["a small blue circle on a white background", "a large green square on a black background"]
    h = enc.run_to_block(enc.tokenize(prompts), layer)[:, 1:].float()
    z = sae.encode_dense(h).amax(1)  # [prompts, latents]
    silent = int(torch.nonzero(z.amax(0) == 0).flatten()[0])
    strip = feature_strip(pipe, enc, sae, silent, prompts, seeds=[1, 2], steps=10, alpha=3.0)
    assert strip.fired == [False, False] and strip.changed("ablated") == [0.0, 0.0]
    assert all(c > 0 for c in strip.changed("boosted"))
    # boosting the difference a colour word makes (at the position where "red" and "blue" differ most)
    # draws a colour other than blue on a blue prompt
    red = enc.run_to_block(enc.tokenize(["a small red circle on a white background"]), layer)[0, 1:].float()
    blue = enc.run_to_block(enc.tokenize(prompts[:1]), layer)[0, 1:].float()
    diff = red - blue
    at = int(diff.norm(dim=1).argmax())
    sae.W_dec[silent] = torch.nn.functional.normalize(diff[at], dim=0)
    from snce_lib.models.toy.detector import ToyDetector

    det = ToyDetector.load()
    boosted = feature_strip(pipe, enc, sae, silent, prompts[:1], seeds=[1], steps=10, alpha=2 * float(diff[at].norm()))
    assert np.array_equal(boosted.images["original"][0], strip.images["original"][0])  # same seed, same image
    assert det.colours(boosted.images["original"])[0] == "blue" != det.colours(boosted.images["boosted"])[0]


def test_a_boost_adds_its_direction_to_the_block_output():
    from snce_lib.models.encoders import load_offline

    enc = load_offline(fp16=False, max_length=16)
    sae = TopKSAE(SAEConfig(384, 32, 4, "offline", "encoder.layer.4", 4)).requires_grad_(False)
    boost = feature_boost(sae, 7, 2.5)
    h = enc.run_to_block(enc.tokenize(["a cat"]), 4)[0, 1:].float()
    assert torch.allclose(boost.fn(h) - h, 2.5 * sae.W_dec[7].expand_as(h), atol=1e-5)
    edited, _ = boost.embed(enc, ["a cat"])
    assert not torch.allclose(edited, enc.embed(enc.tokenize(["a cat"])))
    assert "#7" in boost.name
