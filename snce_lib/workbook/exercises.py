"""Chapter 00's exercises and the functions that check them (in the style of ARENA's tests).

Each `check_*` takes the student's function or answer, compares it with the reference on fresh
inputs, prints one readable line (what is right, or what looks wrong and a hint) and returns
True or False; nothing raises, so Run All goes on. An exercise still at `raise
NotImplementedError` is reported as not written yet, unless SNCE_FILL_ANSWERS=1 (the workbook
runner sets it, so CI runs the chapter with the reference answers in their place).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch

from snce_lib.sae.model import SAEConfig, TopKSAE
from snce_lib.sae.planted import recovery


def reference_topk_encode(x, W_enc, b_enc, b_pre, k):
    pre = torch.relu((x - b_pre) @ W_enc.T + b_enc)
    vals, idx = pre.topk(k, dim=-1)
    return torch.zeros_like(pre).scatter(-1, idx, vals)


def reference_fvu(x, x_hat):
    x, x_hat = torch.as_tensor(x).detach(), torch.as_tensor(x_hat).detach()
    return float((x - x_hat).pow(2).sum() / (x - x.mean(0)).pow(2).sum())


def reference_share_found(W_dec, dirs, threshold=0.9):
    return recovery(W_dec, dirs, threshold)["share_found"]


REFERENCES: dict[str, Callable] = {"topk_encode": reference_topk_encode, "fvu": reference_fvu,
                                   "share_found": reference_share_found}  # fmt: skip

#: Multiple-choice questions: the right answer, and why (printed once answered right).
ANSWERS = {
    "shrinkage": ("l1", "the L1 penalty charges every unit of activation, so the codes it keeps are pulled below "
                        "the true coefficients; TopK only chooses which latents are active, not how strongly"),
    "absorption": ("parent", "the child's latent takes the parent's direction into its own, so whenever that child "
                             "is on, the parent's latent has nothing left to explain and stays silent"),
}  # fmt: skip


def _say(ok: bool, name: str, msg: str) -> bool:
    print(("✓ " if ok else "✗ ") + f"{name}: {msg}")
    return ok


def _resolve(name: str, fn: Callable):
    """(function to check, note): the student's, or the reference where it is not written yet and the
    runner asked for the answers to be filled in."""
    try:
        fn(*_probe_args(name))
    except NotImplementedError:
        if os.environ.get("SNCE_FILL_ANSWERS") == "1":
            return REFERENCES[name], " (the reference answer, filled in by the workbook runner)"
        return None, ""
    except Exception:  # a bug in the student's code: the checks below report it
        pass
    return fn, ""


def _probe_args(name: str):
    g = torch.Generator().manual_seed(0)
    if name == "topk_encode":
        return (torch.randn(4, 6, generator=g), torch.randn(10, 6, generator=g), torch.zeros(10), torch.zeros(6), 2)
    if name == "fvu":
        x = torch.randn(5, 3, generator=g)
        return x, x
    return torch.randn(4, 3, generator=g), torch.randn(2, 3, generator=g)


def check_topk_encode(fn: Callable) -> bool:
    """fn(x [batch, d], W_enc [m, d], b_enc [m], b_pre [d], k) -> z [batch, m], equal to `TopKSAE.encode_dense`."""
    fn, note = _resolve("topk_encode", fn)
    if fn is None:
        return _say(False, "topk_encode", "not written yet (replace `raise NotImplementedError`; the answer is below)")
    g = torch.Generator().manual_seed(1)
    d, m, k = 8, 24, 3
    sae = TopKSAE(SAEConfig(d, m, k))
    sae.reset_parameters(g)
    with torch.no_grad():
        sae.b_enc.normal_(-1.5, 0.3, generator=g)  # some rows have fewer than k positive pre-activations
        sae.b_pre.normal_(0, 0.5, generator=g)
    x = torch.randn(32, d, generator=g)
    want = sae.encode_dense(x).detach()
    args = (x, sae.W_enc.detach(), sae.b_enc.detach(), sae.b_pre.detach(), k)
    try:
        got = torch.as_tensor(fn(*args)).float()
    except Exception as exc:
        return _say(False, "topk_encode", f"raised {type(exc).__name__}: {exc}")
    if got.shape != want.shape:
        return _say(False, "topk_encode", f"expected a dense code of shape {list(want.shape)}, got {list(got.shape)}")
    if (got < 0).any():
        return _say(False, "topk_encode", "some codes are negative: apply the ReLU")
    if ((got != 0).sum(-1) > k).any():
        return _say(False, "topk_encode", f"more than k = {k} non-zeros in a row: keep only the k largest")
    if torch.allclose(got, reference_topk_encode(x, *args[1:3], torch.zeros(d), k), atol=1e-5):
        return _say(False, "topk_encode", "subtract b_pre from x before the encoder")
    if not torch.allclose(got, want, atol=1e-5):
        return _say(False, "topk_encode", "the values differ from the reference: encode, ReLU, then keep the top k")
    return _say(True, "topk_encode", f"matches TopKSAE.encode_dense on 32 random inputs{note}")


def check_fvu(fn: Callable) -> bool:
    """fn(x [n, d], x_hat [n, d]) -> float: the fraction of variance unexplained."""
    fn, note = _resolve("fvu", fn)
    if fn is None:
        return _say(False, "fvu", "not written yet (replace `raise NotImplementedError`; the answer is below)")
    g = torch.Generator().manual_seed(2)
    x = 3 + torch.randn(64, 5, generator=g)
    x_hat = x + 0.5 * torch.randn(64, 5, generator=g)
    try:
        got = float(fn(x, x_hat))
    except Exception as exc:
        return _say(False, "fvu", f"raised {type(exc).__name__}: {exc}")
    want = reference_fvu(x, x_hat)
    if abs(got - float((x - x_hat).pow(2).sum() / x.pow(2).sum())) < 1e-6:
        return _say(False, "fvu", "divide by the variance around the mean x̄, not by the squared norm of x")
    if abs(got - want) > 1e-5:
        return _say(False, "fvu", f"expected {want:.4f}, got {got:.4f}: sum the squared error over every element")
    if abs(float(fn(x, x)) - 0.0) > 1e-6 or abs(float(fn(x, x.mean(0).expand_as(x))) - 1.0) > 1e-5:
        return _say(False, "fvu", "a perfect reconstruction should give 0 and the mean vector 1")
    return _say(True, "fvu", f"0 for a perfect reconstruction, 1 for the mean, {want:.4f} on a noisy one{note}")


def check_share_found(fn: Callable) -> bool:
    """fn(W_dec [m, d], dirs [n, d], threshold=0.9) -> float: the share of planted directions whose
    best cosine among the decoder rows is at least the threshold."""
    fn, note = _resolve("share_found", fn)
    if fn is None:
        return _say(False, "share_found", "not written yet (replace `raise NotImplementedError`; the answer is below)")
    g = torch.Generator().manual_seed(3)
    dirs = torch.nn.functional.normalize(torch.randn(10, 6, generator=g), dim=1)
    w = torch.cat([dirs[:6] * 3.0, torch.randn(14, 6, generator=g)])  # 6 found, rows not unit length
    w[0] = 3.0 * torch.nn.functional.normalize(dirs[0] + 0.6 * dirs[1], dim=0)  # near, not found
    try:
        got = float(fn(w, dirs, 0.9))
    except Exception as exc:
        return _say(False, "share_found", f"raised {type(exc).__name__}: {exc}")
    want = reference_share_found(w, dirs, 0.9)
    if abs(got - want) > 1e-6:
        raw = float(((dirs @ w.T).max(1).values >= 0.9).float().mean())
        hint = "normalise the decoder rows first (a cosine, not a dot product)" if abs(got - raw) < 1e-6 else (
            "for each planted direction take its best decoder row (max over rows), then the share above the threshold")  # fmt: skip
        return _say(False, "share_found", f"expected {want:.2f}, got {got:.2f}: {hint}")
    return _say(True, "share_found", f"{want:.0%} of 10 planted directions found, as the reference says{note}")


def check_answer(question: str, answer: str) -> bool:
    """A multiple-choice answer (`ANSWERS`), compared without case or spaces."""
    right, why = ANSWERS[question]
    if str(answer).strip().lower() in ("", "?", "your answer"):
        if os.environ.get("SNCE_FILL_ANSWERS") == "1":
            return _say(True, question, f"{right} (the reference answer, filled in): {why}")
        return _say(False, question, "not answered yet")
    ok = str(answer).strip().lower() == right
    return _say(ok, question, why if ok else f"not {answer!r}; look at the plot above again")
