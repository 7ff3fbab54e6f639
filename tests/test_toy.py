"""The toy world: renders and detector, training, the committed model, and erasure end to end."""

import numpy as np
import pytest

from snce_lib.models.toy.detector import ToyDetector, accuracy
from snce_lib.models.toy.model import ToyConfig, load_toy_pipeline, train_toy
from snce_lib.models.toy.world import PALETTE, Spec, concept_pairs, render
from snce_lib.resources import data_path

have_model = pytest.mark.skipif(not (data_path("toy", "toy.json")).exists(), reason="no committed toy model")


def test_renders_have_exact_labels():
    img = render(Spec("red", "square", "white", "large", "center"))
    assert img.shape == (16, 16, 3)
    assert tuple(img[8, 8]) == PALETTE["red"] and tuple(img[0, 0]) == (240, 240, 240)
    c, d = concept_pairs("red", 5)[0]
    assert c != d and "red" not in d and "crimson" not in d and "scarlet" not in d


def test_detector_accuracy_on_fresh_renders():
    acc = accuracy(ToyDetector.load(), n=600, seed=2024)
    assert acc["colour"] >= 0.98 and acc["shape"] >= 0.98, acc


def test_a_few_training_steps_reduce_the_loss():
    cfg = ToyConfig(steps=40, batch_size=16, n_captions=64, channels=(16, 32), lr=3e-3)
    _, hist = train_toy(cfg, out=None, progress=False, log_every=5)
    assert hist[-1]["loss"] < 0.7 * hist[0]["loss"], hist


@pytest.fixture(scope="module")
def toy():
    return load_toy_pipeline(), ToyDetector.load()


@have_model
def test_toy_experiment_at_lambda_1(toy, tmp_path_factory):
    """Mode B at lambda 1 with the paper's top-1 neuron.

    Bounds: prompts that do not ask for red keep their colour and shape accuracy within 0.1 of the
    unedited model (mode B leaves a prompt bit-identical wherever the neuron is silent, so only the
    rare prompt on which it fires can change). The detector-based target rate must see red vanish
    when red is truly absent from the prompt (the deconcept twins): below 0.35, against ~1/6 for a
    random colour; this is the control that the metric can measure erasure. Whether one neuron
    achieves that is measured, not asserted: see docs/findings.md.
    """
    from snce_lib.evaluation.toy import run_experiment, train_toy_sae

    pipe, det = toy
    sae = train_toy_sae(tmp_path_factory.mktemp("toy"), tokens=300_000, progress=False, with_corpus=False)
    res = run_experiment(pipe, det, sae, "red", lams=(1.0,), modes=("B",), n=24, steps=20, keep_images=True)
    base, erased = res.rows[0], res.rows[1]
    assert base["target_rate"] >= 0.8, base
    assert abs(erased["other_colour_acc"] - base["other_colour_acc"]) <= 0.1, res.rows
    assert abs(erased["other_shape_acc"] - base["other_shape_acc"]) <= 0.1, res.rows
    # mode B: an image whose prompt never fires the neuron is bit-identical; one that does differs
    from snce_lib.concepts.codes import prompt_codes

    before, after = res.images[("none", 0.0)], res.images[("B", 1.0)]
    for part in ("other", "target"):
        fires = prompt_codes(pipe.encoder, sae, [t for t, _ in getattr(res.suite, part)]).fired_per_prompt()
        fires = fires[:, res.selection.neurons[0]].numpy()
        same = np.array([np.array_equal(a, b) for a, b in zip(before[part], after[part])])
        assert same[~fires].all(), (part, fires, same)
    assert fires.any() and not same[fires].all()  # on red prompts it fires, and the edit changes images
    twins = [d for _, d in concept_pairs("red", 24, seed=5)]
    cols = det.colours(pipe.generate(twins, list(range(24)), 20))
    assert np.mean([c == "red" for c in cols]) <= 0.35
