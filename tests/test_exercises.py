"""The chapters' checks: the reference answers pass, each typical mistake fails with the hint that
names it, multiple-choice answers are read as people write them, an unwritten exercise fails for a
student and runs the reference under the runner, where a failing reference raises; and chapter
00's downstream cells run on the answers the book hands back."""

import pytest
import torch

from snce_lib.workbook import exercises as ex


def unwritten(*a, **k):
    raise NotImplementedError


@pytest.fixture(autouse=True)
def student(monkeypatch):
    monkeypatch.delenv("SNCE_FILL_ANSWERS", raising=False)


def test_reference_answers_pass(capsys):
    for name, fn in ex.REFERENCES.items():
        assert ex.CHECKS[name](fn), name
    assert ex.check_answer("shrinkage", "L1 ") and ex.check_answer("absorption", "parent")
    assert capsys.readouterr().out.count("✓") == len(ex.REFERENCES) + 2


def test_the_trainers_own_step_passes_the_train_step_check():
    """The check's reference is the trainer's update: the library's `training_step` passes it."""
    from snce_lib.sae.lesson import library_step

    assert ex.check_train_step(library_step)


def test_wrong_toy_forwards_fail_with_their_hint(capsys):
    cases = ((lambda x, W, b: (x @ W.T) @ W + b, "apply the ReLU"), (lambda x, W, b: torch.relu((x @ W.T) @ W), "add the bias"),
             (lambda x, W, b: torch.relu((x @ W.T) @ W) + b, "inside the ReLU"), (lambda x, W, b: torch.relu(x @ W.T), "expected [batch, n]"),
             (lambda x, W, b: torch.relu((x @ W.T) @ (2 * W) + b), "differ"))  # fmt: skip
    for fn, hint in cases:
        assert not ex.check_toy_forward(fn)
        assert hint in capsys.readouterr().out, hint


def test_wrong_topk_encodes_fail_with_their_hint(capsys):
    def no_relu(x, W_enc, b_enc, b_pre, k):
        pre = (x - b_pre) @ W_enc.T + b_enc
        vals, idx = pre.topk(k, dim=-1)
        return torch.zeros_like(pre).scatter(-1, idx, vals)

    def no_topk(x, W_enc, b_enc, b_pre, k):
        return torch.relu((x - b_pre) @ W_enc.T + b_enc)

    def no_b_pre(x, W_enc, b_enc, b_pre, k):
        return ex.reference_topk_encode(x, W_enc, b_enc, torch.zeros_like(b_pre), k)

    def transposed(x, W_enc, b_enc, b_pre, k):
        return ex.reference_topk_encode(x, W_enc, b_enc, b_pre, k).T

    for fn, hint in ((no_relu, "apply the ReLU"), (no_topk, "keep only the k largest"),
                     (no_b_pre, "subtract b_pre"), (transposed, "expected a dense code of shape")):  # fmt: skip
        assert not ex.check_topk_encode(fn)
        assert hint in capsys.readouterr().out, fn.__name__


def test_the_three_typical_fvu_mistakes_fail_with_the_hint_that_names_them(capsys):
    """A scalar mean instead of the mean vector, the variance of the wrong tensor, a per-dimension
    average: each is caught and named (and so are the other mistakes in FVU_MISTAKES)."""
    typical = {
        "scalar mean": (lambda x, xh: (x - xh).pow(2).sum() / (x - x.mean()).pow(2).sum(), "one scalar mean"),
        "variance of x_hat": (lambda x, xh: (x - xh).pow(2).sum() / (xh - xh.mean(0)).pow(2).sum(), "the wrong tensor"),
        "per-dimension": (lambda x, xh: ((x - xh).pow(2).sum(0) / (x - x.mean(0)).pow(2).sum(0)).mean(), "per-dimension"),
        "torch.var": (lambda x, xh: (x - xh).pow(2).mean() / x.var(), "one scalar variance"),
    }  # fmt: skip
    for name, (fn, hint) in typical.items():
        assert not ex.check_fvu(fn), name
        assert hint in capsys.readouterr().out, name
    for name, fn, hint in ex.FVU_MISTAKES:
        assert not ex.check_fvu(fn), name
        assert hint in capsys.readouterr().out, name
    assert ex.check_fvu(lambda x, xh: float(ex.reference_fvu(x, xh)))  # a float is as good as a 0-d tensor


def test_wrong_share_found_fails_with_its_hint(capsys):
    assert not ex.check_share_found(lambda w, d, t=0.9: float(((d @ w.T).max(1).values >= t).float().mean()))
    assert "normalise the decoder rows" in capsys.readouterr().out
    per_row = lambda w, d, t=0.9: float(  # noqa: E731
        (torch.nn.functional.normalize(w, dim=1) @ torch.nn.functional.normalize(d, dim=1).T)
        .max(1)
        .values.ge(t)
        .float()
        .mean()
    )
    assert not ex.check_share_found(per_row)
    assert "max over rows" in capsys.readouterr().out


def test_each_training_step_mistake_fails_with_the_hint_that_names_it(capsys):
    for flags, hint in ex.STEP_MISTAKES:
        assert not ex.check_train_step(lambda *a, f=flags: ex._step(*a, **f)), flags
        assert hint in capsys.readouterr().out, flags

    def no_auxk(sae, opt, x, dead, k_aux, alpha):
        return ex.reference_train_step(sae, opt, x, dead, k_aux, 0.0)

    def late_fvu(sae, opt, x, dead, k_aux, alpha):
        _, auxk, z = ex.reference_train_step(sae, opt, x, dead, k_aux, alpha)
        return float(ex.reference_fvu(x, z @ sae.W_dec + sae.b_pre).detach()), auxk, z

    def no_code(sae, opt, x, dead, k_aux, alpha):
        fvu, auxk, _ = ex.reference_train_step(sae, opt, x, dead, k_aux, alpha)
        return fvu, auxk, None

    for fn, hint in (
        (no_auxk, "ignores AuxK"),
        (late_fvu, "measured before the update"),
        (no_code, "return fvu, auxk, z"),
    ):
        assert not ex.check_train_step(fn)
        assert hint in capsys.readouterr().out, fn.__name__


@pytest.mark.parametrize(
    "question,answers,right",
    [("shrinkage", ["L1", "l1 sae", "the L1 one", "ReLU + L1", "relu/l1", " l1 "], True),
     ("shrinkage", ["topk", "Top-K", "the top k SAE"], False),
     ("absorption", ["parent", "the parent's", "Parent latent", "PARENT"], True),
     ("absorption", ["child", "the children", "child's latent"], False)],
)  # fmt: skip
def test_multiple_choice_reads_answers_as_people_write_them(capsys, question, answers, right):
    for a in answers:
        assert ex.check_answer(question, a) is right, a
    out = capsys.readouterr().out
    assert out.count("✓" if right else "✗") == len(answers)


def test_an_answer_naming_both_or_neither_option_asks_for_one(capsys):
    assert not ex.check_answer("shrinkage", "both l1 and topk") and not ex.check_answer("absorption", "neither")
    assert capsys.readouterr().out.count("name one") == 2
    assert not ex.check_answer("shrinkage", "your answer")
    assert "not answered yet" in capsys.readouterr().out


def test_unwritten_exercises_fail_for_a_student_and_run_the_reference_under_the_runner(capsys, monkeypatch):
    book = ex.Exercises()
    for name in ex.REFERENCES:
        assert book.check(name, unwritten) is unwritten
    assert capsys.readouterr().out.count("not written yet") == len(ex.REFERENCES)
    assert book.summary() == f"exercises passed: 0 of {len(ex.REFERENCES)}"
    monkeypatch.setenv("SNCE_FILL_ANSWERS", "1")
    for name, ref in ex.REFERENCES.items():
        assert book.check(name, unwritten) is ref
    assert ex.check_answer("absorption", "your answer")
    assert capsys.readouterr().out.count("reference answer") == len(ex.REFERENCES) + 1
    assert book.summary() == f"exercises passed: {len(ex.REFERENCES)} of {len(ex.REFERENCES)}"


def test_a_student_function_that_fails_is_still_the_one_used_and_says_so(capsys):
    book = ex.Exercises()
    wrong = lambda x, xh: (x - xh).pow(2).mean()  # noqa: E731
    assert book.check("fvu", wrong) is wrong and book.passed["fvu"] is False
    assert "the cells below run on your fvu" in capsys.readouterr().out


def test_under_the_runner_a_failing_reference_raises(monkeypatch):
    """In CI a check whose reference answer fails must stop the run, not print and go on."""
    monkeypatch.setenv("SNCE_FILL_ANSWERS", "1")
    monkeypatch.setitem(ex.REFERENCES, "fvu", lambda x, xh: (x - xh).pow(2).mean())
    with pytest.raises(ex.ReferenceFailed, match="fvu"):
        ex.Exercises().check("fvu", unwritten)


def test_predictions_are_kept_until_the_measurement_and_shown_beside_it(capsys):
    book = ex.Exercises()
    book.predict("dead share", "your prediction")
    assert "no prediction written yet" in capsys.readouterr().out
    book.predict("dead share", 0.05)
    book.reveal("dead share", "1.2%")
    out = capsys.readouterr().out
    assert "measured 1.2%; you predicted 0.05" in out


def test_chapter_00_downstream_cells_run_on_the_reference_answers(monkeypatch):
    torch.set_num_threads(1)  # tiny models (conftest's 2 threads come back at the end)
    """Chapter 00's pipeline as its cells chain it, on the functions the book hands back under the
    runner: the toy model trains on `toy_forward` and packs more features than dimensions when sparse,
    the SAE trained with `train_step` (and `share_found` counting) climbs from chance to the toy
    model's features, and the dead-start run with AuxK revives latents. Fails if any check fails."""
    from snce_lib.sae.dead import dead_start_run
    from snce_lib.sae.lesson import start_sae, train_watched
    from snce_lib.sae.superposition import as_planted, summarise, train_toy_models

    monkeypatch.setenv("SNCE_FILL_ANSWERS", "1")
    book = ex.Exercises()
    fns = {name: book.check(name, unwritten) for name in ex.REFERENCES}
    assert all(book.passed.values())
    models = train_toy_models(40, 10, (1.0, 0.02), steps=1500, forward=fns["toy_forward"])
    dense, sparse = summarise(models)
    assert dense["represented"] <= 10 < sparse["represented"]
    toy = as_planted(models, 1, n_samples=8000)
    sae0 = start_sae(toy.x, 2 * len(toy.dirs), 3)
    z = fns["topk_encode"](toy.x, sae0.W_enc.detach(), sae0.b_enc.detach(), sae0.b_pre.detach(), 3)
    assert float(fns["fvu"](toy.x, z @ sae0.W_dec.detach() + sae0.b_pre.detach())) == pytest.approx(
        float(sae0(toy.x).fvu), rel=1e-4
    )
    run = train_watched(toy, n_latents=2 * len(toy.dirs), k=3, steps=600, log_every=600, step=fns["train_step"],
                        found=fns["share_found"])  # fmt: skip
    assert run.history[0]["share_found"] <= run.chance["share_found"] + 0.05
    assert run.history[-1]["share_found"] >= 0.8, run.history[-1]
    on = dead_start_run(toy, len(toy.dirs), 3, auxk_alpha=1 / 32, steps=200, k_aux=8, dead_after_tokens=1024,
                        step=fns["train_step"])  # fmt: skip
    assert on["revived"] >= on["n_started_dead"] // 2
    torch.set_num_threads(2)


def test_the_answer_boxes_of_chapter_00_pass_their_checks():
    """The code a student reads in each closed Answer box is checked like a student's, so the boxes
    cannot drift from the references."""
    import re
    from pathlib import Path

    src = (Path(__file__).resolve().parents[1] / "notebooks" / "00_sparse_dictionaries.py").read_text()
    blocks = re.findall(r"# <details><summary>Answer</summary>\n#\n# ```python\n(.*?)# ```", src, re.S)
    ns = {"torch": torch}
    for block in blocks:
        exec("\n".join(line[2:] for line in block.splitlines()), ns)
    assert set(ex.CHECKS) <= set(ns)
    for name, check in ex.CHECKS.items():
        assert check(ns[name]), name
