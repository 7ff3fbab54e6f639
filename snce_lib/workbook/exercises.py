"""The chapters' exercises and the functions that check them (in the style of ARENA's tests).

Each `check_*` takes the student's function, compares it with the reference on fresh inputs and
prints one readable line: what is right, or which typical mistake it sees and how to fix it. It
returns True or False and never raises for a student, so Run All goes on. An exercise still at
`raise NotImplementedError` is reported as not written yet, unless SNCE_FILL_ANSWERS=1 (the workbook
runner sets it, so CI runs the chapters with the reference answers in their place); then a
reference answer that fails its own check raises, since that is a bug in the library, not a student's.

A notebook goes through one `Exercises` book: `book.check(name, fn)` checks and returns the
function the cells below run on (the student's; the reference only where the runner filled it
in), `book.answer` checks a multiple-choice answer written the way a person writes it ("L1",
"the L1 one", "relu + l1"), and `book.predict` / `book.reveal` hold a prediction until the cell that
measures it has run.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable

import torch

from snce_lib.sae.model import SAEConfig, TopKSAE
from snce_lib.sae.planted import recovery
from snce_lib.sae.superposition import toy_forward as reference_toy_forward


class ReferenceFailed(AssertionError):
    """A reference answer failed its own check under the workbook runner: a bug in the library."""


def filling_in() -> bool:
    """Whether the workbook runner asked for the reference answers (SNCE_FILL_ANSWERS=1)."""
    return os.environ.get("SNCE_FILL_ANSWERS") == "1"


# ---- reference answers -----------------------------------------------------------------------------
def reference_topk_encode(x, W_enc, b_enc, b_pre, k):
    pre = torch.relu((x - b_pre) @ W_enc.T + b_enc)
    vals, idx = pre.topk(k, dim=-1)
    return torch.zeros_like(pre).scatter(-1, idx, vals)


def reference_fvu(x, x_hat):
    return (x - x_hat).pow(2).sum() / (x - x.mean(0)).pow(2).sum()


def reference_share_found(W_dec, dirs, threshold=0.9):
    return recovery(W_dec, dirs, threshold)["share_found"]


def _step(sae, opt, x, dead, k_aux, alpha, *, detach=True, relu=True, from_code=False, use_dead=True,
          weight=True, project=True, renorm=True):  # fmt: skip
    """The reference training step, and with one flag off, each typical mistake the check names."""
    pre = (x - sae.b_pre) @ sae.W_enc.T + sae.b_enc  # [batch, m] before the ReLU
    z = reference_topk_encode(x, sae.W_enc, sae.b_enc, sae.b_pre, sae.cfg.k)
    x_hat = z @ sae.W_dec + sae.b_pre
    fvu = reference_fvu(x, x_hat)
    auxk = x.new_zeros(())
    if bool(dead.any()):
        e = (x - x_hat).detach() if detach else x - x_hat  # what the live latents missed
        source = z if from_code else pre
        cand = source.masked_fill(~dead, float("-inf")) if use_dead else source
        vals, idx = cand.topk(min(k_aux, int(dead.sum())), dim=-1)
        e_hat = torch.zeros_like(pre).scatter(-1, idx, torch.relu(vals) if relu else vals) @ sae.W_dec
        auxk = (e_hat - e).pow(2).sum() / (e - e.mean(0)).pow(2).sum()
    opt.zero_grad()
    (fvu + (alpha if weight else 1.0) * auxk).backward()
    if project:
        sae.remove_parallel_grad_()
    opt.step()
    if renorm:
        sae.set_decoder_norm_()
    return float(fvu.detach()), float(auxk.detach()), z.detach()


def reference_train_step(sae, opt, x, dead, k_aux, alpha):
    return _step(sae, opt, x, dead, k_aux, alpha)


REFERENCES: dict[str, Callable] = {"toy_forward": reference_toy_forward, "topk_encode": reference_topk_encode,
                                   "fvu": reference_fvu, "share_found": reference_share_found,
                                   "train_step": reference_train_step}  # fmt: skip


# ---- the checks ------------------------------------------------------------------------------------
def _say(ok: bool, name: str, msg: str) -> bool:
    print(("✓ " if ok else "✗ ") + f"{name}: {msg}")
    return ok


def _unwritten(fn: Callable, args: tuple) -> bool:
    try:
        fn(*args)
    except NotImplementedError:
        return True
    except Exception:  # noqa: BLE001 (a bug in the student's code: the check reports it)
        return False
    return False


def _close(a, b, tol=1e-5) -> bool:
    return math.isclose(float(a), float(b), rel_tol=tol, abs_tol=tol)


def check_toy_forward(fn: Callable) -> bool:
    """fn(x [batch, n], W [m, n], b [n]) -> x' [batch, n] = ReLU(W^T W x + b), row by row."""
    g = torch.Generator().manual_seed(4)
    n, m = 7, 3
    x, W, b = torch.rand(16, n, generator=g), torch.randn(m, n, generator=g), torch.randn(n, generator=g) - 1.0
    want = reference_toy_forward(x, W, b)
    try:
        got = torch.as_tensor(fn(x, W, b)).float()
    except Exception as exc:  # noqa: BLE001
        return _say(False, "toy_forward", f"raised {type(exc).__name__}: {exc} (h = x @ W.T is [batch, m])")
    if got.shape != want.shape:
        return _say(False, "toy_forward", f"expected [batch, n] = {list(want.shape)}, got {list(got.shape)}: "
                                          "h = x @ W.T, then back with @ W")  # fmt: skip
    if torch.allclose(got, (x @ W.T) @ W + b, atol=1e-5):
        return _say(False, "toy_forward", "some outputs are negative: apply the ReLU after adding b")
    if torch.allclose(got, torch.relu((x @ W.T) @ W), atol=1e-5):
        return _say(False, "toy_forward", "add the bias b before the ReLU")
    if torch.allclose(got, torch.relu((x @ W.T) @ W) + b, atol=1e-5):
        return _say(False, "toy_forward", "add b inside the ReLU, not after it")
    if not torch.allclose(got, want, atol=1e-5):
        return _say(False, "toy_forward", "the values differ from ReLU(x W^T W + b)")
    return _say(True, "toy_forward", "matches ReLU(W^T W x + b) on 16 random inputs")


def check_topk_encode(fn: Callable) -> bool:
    """fn(x [batch, d], W_enc [m, d], b_enc [m], b_pre [d], k) -> z [batch, m], equal to `TopKSAE.encode_dense`."""
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
        got = torch.as_tensor(fn(*args)).detach().float()
    except Exception as exc:  # noqa: BLE001
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
    return _say(True, "topk_encode", "matches TopKSAE.encode_dense on 32 random inputs")


#: The typical FVU mistakes, each as the value it gives and the hint that names it.
FVU_MISTAKES: list[tuple[str, Callable, str]] = [
    ("not centred", lambda x, xh: (x - xh).pow(2).sum() / x.pow(2).sum(),
     "divide by the variance around the mean x̄, not by the squared norm of x"),
    ("scalar mean", lambda x, xh: (x - xh).pow(2).sum() / (x - x.mean()).pow(2).sum(),
     "x̄ is the mean vector x.mean(0), one mean per dimension, not one scalar mean over every element"),
    ("scalar variance", lambda x, xh: (x - xh).pow(2).mean() / x.var(),
     "x.var() is one scalar variance around one scalar mean over every element: the denominator is the "
     "squared distance of each row from the mean vector x.mean(0), summed"),
    ("unbiased variance", lambda x, xh: (x - xh).pow(2).mean() / x.var(0).sum(),
     "nearly: torch.var divides by n - 1, the squared error by n; use the plain sums, (x - x.mean(0))**2 summed"),
    ("variance of x̂", lambda x, xh: (x - xh).pow(2).sum() / (xh - xh.mean(0)).pow(2).sum(),
     "the variance of the wrong tensor: the denominator is x's variance, not x̂'s"),
    ("variance of the error", lambda x, xh: (x - xh).pow(2).sum() / ((x - xh) - (x - xh).mean(0)).pow(2).sum(),
     "the variance of the wrong tensor: the denominator is x's variance, not the error's"),
    ("per-dimension average", lambda x, xh: ((x - xh).pow(2).sum(0) / (x - x.mean(0)).pow(2).sum(0)).mean(),
     "a per-dimension average: sum the squared error over every dimension first, then divide once "
     "(one ratio of sums, so a wide dimension weighs what it should)"),
    ("per-sample average", lambda x, xh: ((x - xh).pow(2).sum(1) / (x - x.mean(0)).pow(2).sum(1)).mean(),
     "a per-sample average of ratios: sum over the whole batch first, then divide once"),
    ("mean squared error", lambda x, xh: (x - xh).pow(2).mean(),
     "that is the mean squared error: divide the summed error by x's summed variance"),
]  # fmt: skip


def check_fvu(fn: Callable) -> bool:
    """fn(x [n, d], x_hat [n, d]) -> the fraction of variance unexplained (a float or a 0-d tensor)."""
    g = torch.Generator().manual_seed(2)
    # dimensions with different means and spreads, and an error that is not the same in each, so
    # that every mistake in FVU_MISTAKES gives its own value
    x = torch.tensor([3.0, -1.0, 0.5, 8.0, 0.0]) + torch.randn(64, 5, generator=g) * torch.tensor([1.0, 4.0, 0.3, 2.0, 1.5])  # fmt: skip
    x_hat = x + torch.randn(64, 5, generator=g) * torch.tensor([0.5, 0.2, 0.6, 1.5, 0.1]) + 0.3
    want = float(reference_fvu(x, x_hat))
    try:
        got = float(fn(x, x_hat))
    except Exception as exc:  # noqa: BLE001
        return _say(False, "fvu", f"raised {type(exc).__name__}: {exc}")
    if not _close(got, want):
        for _, mistake, hint in FVU_MISTAKES:
            if _close(got, float(mistake(x, x_hat))):
                return _say(False, "fvu", f"got {got:.4f}, expected {want:.4f}: {hint}")
        return _say(False, "fvu", f"expected {want:.4f}, got {got:.4f}: the summed squared error over the summed "
                                  "squared distance of x from its mean vector")  # fmt: skip
    if not _close(float(fn(x, x)), 0.0) or not _close(float(fn(x, x.mean(0).expand_as(x))), 1.0):
        return _say(False, "fvu", "a perfect reconstruction should give 0 and the mean vector 1")
    return _say(True, "fvu", f"0 for a perfect reconstruction, 1 for the mean, {want:.4f} on a noisy one")


def check_share_found(fn: Callable) -> bool:
    """fn(W_dec [m, d], dirs [n, d], threshold=0.9) -> float: the share of planted directions whose
    best cosine among the decoder rows is at least the threshold."""
    g = torch.Generator().manual_seed(3)
    dirs = torch.nn.functional.normalize(torch.randn(10, 6, generator=g), dim=1)
    w = torch.cat([dirs[:6] * 3.0, torch.randn(14, 6, generator=g)])  # 6 found, rows not unit length
    w[0] = 3.0 * torch.nn.functional.normalize(dirs[0] + 0.6 * dirs[1], dim=0)  # near, not found
    try:
        got = float(fn(w, dirs, 0.9))
    except Exception as exc:  # noqa: BLE001
        return _say(False, "share_found", f"raised {type(exc).__name__}: {exc}")
    want = reference_share_found(w, dirs, 0.9)
    if abs(got - want) > 1e-6:
        raw = float(((dirs @ w.T).max(1).values >= 0.9).float().mean())
        hint = "normalise the decoder rows first (a cosine, not a dot product)" if abs(got - raw) < 1e-6 else (
            "for each planted direction take its best decoder row (max over rows), then the share above the threshold")  # fmt: skip
        return _say(False, "share_found", f"expected {want:.2f}, got {got:.2f}: {hint}")
    return _say(True, "share_found", f"{want:.0%} of 10 planted directions found, as the reference says")


#: The typical training-step mistakes: the reference with one thing left out, and the hint that names it.
STEP_MISTAKES: list[tuple[dict, str]] = [
    ({"detach": False}, "detach the residual e = (x - x̂).detach(): AuxK should train the dead latents, "
                        "not pull the live ones towards their own error"),
    ({"from_code": True}, "rank the dead latents by their pre-activations (before the ReLU and TopK): their "
                          "TopK codes are all zero, so AuxK gets no gradient"),
    ({"relu": False}, "apply the ReLU to the k_aux pre-activations you keep (as the encoder does)"),
    ({"use_dead": False}, "take the k_aux largest pre-activations among the dead latents only (mask the live ones "
                          "with -inf)"),
    ({"weight": False}, "weigh the AuxK term by alpha: loss = fvu + alpha * auxk"),
    ({"project": False}, "call sae.remove_parallel_grad_() after backward(): the decoder rows live on the unit "
                         "sphere, so their gradient along themselves is removed before the step"),
    ({"renorm": False}, "call sae.set_decoder_norm_() after opt.step(): decoder rows back to unit norm"),
]  # fmt: skip


def _step_case(seed: int = 5):
    """An SAE, a batch and a dead mask where every mistake in STEP_MISTAKES changes the update: a few
    dead latents with positive pre-activations, the rest of them negative."""
    g = torch.Generator().manual_seed(seed)
    d, m, k = 8, 24, 3
    sae = TopKSAE(SAEConfig(d, m, k))
    sae.reset_parameters(g)
    with torch.no_grad():
        sae.b_pre.normal_(0, 0.3, generator=g)
        sae.b_enc[16:] = torch.linspace(-1.5, 0.3, 8)  # dead ones, some of them above zero
    x = torch.randn(64, d, generator=g) @ torch.diag(torch.linspace(0.5, 2.0, d))
    dead = torch.zeros(m, dtype=torch.bool)
    dead[16:] = True
    return sae, x, dead


def _apply(step: Callable, sae0: TopKSAE, x, dead, k_aux=4, alpha=0.25, steps=2):
    import copy

    sae = copy.deepcopy(sae0)
    opt = torch.optim.Adam(sae.parameters(), lr=1e-2)
    out = [step(sae, opt, x, dead, k_aux, alpha) for _ in range(steps)]
    return sae, out


def _same(a: TopKSAE, b: TopKSAE) -> bool:
    return all(torch.allclose(pa, pb, atol=1e-5) for pa, pb in zip(a.parameters(), b.parameters()))


def check_train_step(fn: Callable) -> bool:
    """fn(sae, opt, x [batch, d], dead [m] bool, k_aux, alpha) -> (fvu, auxk, z [batch, m]): one
    Adam step on FVU + alpha * AuxK, the same update as the trainer's `training_step`."""
    sae0, x, dead = _step_case()
    want_sae, want = _apply(reference_train_step, sae0, x, dead)
    try:
        got_sae, got = _apply(fn, sae0, x, dead)
        (fvu, auxk, z) = got[0]
        fvu, auxk, z = float(fvu), float(auxk), torch.as_tensor(z)
    except Exception as exc:  # noqa: BLE001
        return _say(False, "train_step", f"raised {type(exc).__name__}: {exc} (return fvu, auxk, z)")
    if z.shape != (len(x), sae0.cfg.n_latents):
        return _say(False, "train_step", f"z should be the batch's dense code [{len(x)}, {sae0.cfg.n_latents}], "
                                         f"got {list(z.shape)}")  # fmt: skip
    if not _close(fvu, want[0][0], 1e-4):
        return _say(False, "train_step", f"the FVU returned ({fvu:.4f}) is not the batch's ({want[0][0]:.4f}), "
                                         "measured before the update")  # fmt: skip
    if _same(got_sae, want_sae):
        if not _close(auxk, want[0][1], 1e-4):
            return _say(False, "train_step", f"the update is right, but the AuxK returned ({auxk:.4f}) is not "
                                             f"the one in the loss ({want[0][1]:.4f})")  # fmt: skip
        return _say(True, "train_step", "two steps give the trainer's update, AuxK term included")
    for flags, hint in STEP_MISTAKES:
        if _same(got_sae, _apply(lambda *a, f=flags: _step(*a, **f), sae0, x, dead)[0]):
            return _say(False, "train_step", hint)
    if _same(got_sae, _apply(lambda *a: _step(*a[:5], 0.0), sae0, x, dead)[0]):
        return _say(False, "train_step", "the update ignores AuxK: add alpha * auxk to the loss before backward()")
    return _say(False, "train_step", "the parameters after two steps differ from the trainer's: loss = fvu + alpha "
                                     "* auxk, backward, remove_parallel_grad_, opt.step, set_decoder_norm_")  # fmt: skip


CHECKS: dict[str, Callable[[Callable], bool]] = {"toy_forward": check_toy_forward, "topk_encode": check_topk_encode,
                                                 "fvu": check_fvu, "share_found": check_share_found,
                                                 "train_step": check_train_step}  # fmt: skip

#: Arguments that make each exercise run far enough to say whether it is still unwritten.
_PROBES = {
    "toy_forward": lambda: (torch.rand(2, 3), torch.randn(2, 3), torch.zeros(3)),
    "topk_encode": lambda: (torch.randn(4, 6), torch.randn(10, 6), torch.zeros(10), torch.zeros(6), 2),
    "fvu": lambda: (torch.randn(5, 3), torch.randn(5, 3)),
    "share_found": lambda: (torch.randn(4, 3), torch.randn(2, 3)),
    "train_step": lambda: (lambda s, x, d: (s, torch.optim.Adam(s.parameters()), x, d, 4, 0.25))(*_step_case()),
}


# ---- multiple choice -------------------------------------------------------------------------------
#: question -> (the right option, {option: words that name it}, why)
QUESTIONS = {
    "shrinkage": ("l1", {"l1": ("l1", "relu", "penalty"), "topk": ("topk", "top-k", "top k")},
                  "the L1 penalty charges every unit of activation, so the codes it keeps are pulled below the true "
                  "coefficients; TopK only chooses which latents are active, not how strongly"),
    "absorption": ("parent", {"parent": ("parent",), "child": ("child", "children")},
                   "the child's latent takes the parent's direction into its own, so whenever that child is on, the "
                   "parent's latent has nothing left to explain and stays silent"),
}  # fmt: skip

_PLACEHOLDERS = {"", "?", "your answer", "your prediction", "none"}


def read_choice(question: str, answer) -> str | None:
    """Which option of `question` an answer names ("L1", "l1 sae", "the L1 one" -> "l1"), or None when
    it names none or several."""
    _, options, _ = QUESTIONS[question]
    text = " " + re.sub(r"[^a-z0-9+\- ]", " ", str(answer).lower()) + " "
    named = {opt for opt, words in options.items() if any(w in text for w in words)}
    return named.pop() if len(named) == 1 else None


def check_answer(question: str, answer) -> bool:
    """A multiple-choice answer, read as a person writes it (`read_choice`)."""
    right, options, why = QUESTIONS[question]
    if str(answer).strip().lower() in _PLACEHOLDERS:
        if filling_in():
            return _say(True, question, f"{right} (the reference answer, filled in): {why}")
        return _say(False, question, "not answered yet")
    choice = read_choice(question, answer)
    if choice is None:
        return _say(False, question, f"{answer!r} names none or several of {', '.join(map(repr, options))}: name one")
    if choice != right:
        return _say(False, question, f"not {choice!r}: look at the measurements again")
    return _say(True, question, why)


# ---- the book a notebook keeps -----------------------------------------------------------------------
class Exercises:
    """One notebook's exercises: which passed, the predictions waiting for their measurement."""

    def __init__(self):
        self.passed: dict[str, bool] = {}
        self.predictions: dict[str, object] = {}

    def check(self, name: str, fn: Callable) -> Callable:
        """Check the student's `fn` for exercise `name`; returns the function the cells below run on:
        the student's, or the reference where it is not written yet and the runner fills answers in."""
        if _unwritten(fn, _PROBES[name]()):
            if not filling_in():
                self.passed[name] = _say(False, name, "not written yet (it, or a function it calls, raises NotImplementedError; "
                                                      "the answer is in the closed box below)")  # fmt: skip
                return fn
            print(f"(the reference answer stands in for {name}: the workbook runner filled it in)")
            if not CHECKS[name](REFERENCES[name]):
                raise ReferenceFailed(f"the reference answer for {name} fails its own check")
            self.passed[name] = True
            return REFERENCES[name]
        ok = CHECKS[name](fn)
        self.passed[name] = ok
        if not ok:
            print(f"  the cells below run on your {name} as it is; fix it and run this cell again")
        return fn

    def answer(self, question: str, answer) -> None:
        self.passed[question] = check_answer(question, answer)

    def predict(self, name: str, value) -> None:
        """Keep a prediction (a number or a word) until `reveal` shows the measurement beside it."""
        if str(value).strip().lower() in _PLACEHOLDERS:
            print(f"{name}: no prediction written yet; write one, then run the next cell")
            return
        self.predictions[name] = value
        print(f"{name}: your prediction, {value!r}, is kept; now run the next cell")

    def reveal(self, name: str, measured, unit: str = "") -> None:
        said = self.predictions.get(name)
        head = f"{name}: measured {measured}{unit}"
        if said is None:
            print(f"{head} (no prediction was written)")
        else:
            print(f"{head}; you predicted {said}{unit}")

    def summary(self) -> str:
        done = sum(self.passed.values())
        return f"exercises passed: {done} of {len(self.passed)}"
