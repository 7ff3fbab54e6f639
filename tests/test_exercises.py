"""Chapter 00's checks: the reference answers pass, each typical mistake fails with its hint, and an
unwritten exercise fails unless the runner fills the answers in."""

import pytest
import torch

from snce_lib.workbook import exercises as ex


def unwritten(*a, **k):
    raise NotImplementedError


@pytest.fixture(autouse=True)
def student(monkeypatch):
    monkeypatch.delenv("SNCE_FILL_ANSWERS", raising=False)


def test_reference_answers_pass(capsys):
    assert ex.check_topk_encode(ex.reference_topk_encode)
    assert ex.check_fvu(ex.reference_fvu)
    assert ex.check_share_found(ex.reference_share_found)
    assert ex.check_answer("shrinkage", "L1 ") and ex.check_answer("absorption", "parent")
    assert capsys.readouterr().out.count("✓") == 5


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


def test_wrong_fvus_fail_with_their_hint(capsys):
    assert not ex.check_fvu(lambda x, x_hat: float((x - x_hat).pow(2).sum() / x.pow(2).sum()))
    assert "around the mean" in capsys.readouterr().out
    assert not ex.check_fvu(lambda x, x_hat: float((x - x_hat).pow(2).mean()))
    assert "expected" in capsys.readouterr().out


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


def test_wrong_and_missing_answers_fail(capsys):
    assert not ex.check_answer("shrinkage", "topk") and not ex.check_answer("absorption", "child")
    assert not ex.check_answer("shrinkage", "your answer")
    assert "not answered yet" in capsys.readouterr().out


def test_unwritten_exercises_fail_for_a_student_and_run_the_reference_under_the_runner(capsys, monkeypatch):
    for check in (ex.check_topk_encode, ex.check_fvu, ex.check_share_found):
        assert not check(unwritten)
    assert capsys.readouterr().out.count("not written yet") == 3
    monkeypatch.setenv("SNCE_FILL_ANSWERS", "1")
    for check in (ex.check_topk_encode, ex.check_fvu, ex.check_share_found):
        assert check(unwritten)
    assert ex.check_answer("absorption", "your answer")
    assert capsys.readouterr().out.count("reference answer") == 4
