"""The sparse training path of the TopK SAE: every step touches only the k active latents of each
token (and the k_aux dead ones for AuxK), except the encoder's forward product, which must score
every latent to find the top k.

- decoder, forward and backward: `embedding_bag` over the active rows of W_dec (no [batch, m] code);
- encoder, backward: the gradient of the pre-activations is non-zero only at the chosen latents, so
  the input gradient is an `embedding_bag` over rows of W_enc, the bias gradient an `index_add_`,
  and the weight gradient a sparse x dense product with batch x (k + k_aux) non-zeros instead of a
  dense [m, batch] x [batch, d] one.

`TopKSAE.forward(..., sparse=False)` is the dense reference; tests check that both give the same
loss and gradients to fp32 tolerance.
"""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F


class _TopKEncode(torch.autograd.Function):
    """(x, b_pre, W_enc, b_enc) -> TopK of ReLU(W_enc (x - b_pre) + b_enc) and, for AuxK, the top dead ones."""

    @staticmethod
    def forward(ctx, x, b_pre, W_enc, b_enc, k: int, dead_mask, k_aux: int, shared: dict):
        xc = x - b_pre
        # mm then an in-place bias: addmm first copies the broadcast bias into the [batch, m] output
        lin = xc @ W_enc.t()
        lin.add_(b_enc.to(lin.dtype))  # in lin's dtype: an fp32 bias into bf16 rows took 4x as long
        # ReLU after the top k, not over the whole [batch, m] matrix: the same values (a row with fewer
        # than k positives gets zeros either way) for a fifth less time at 384 -> 1,536
        vals, idx = topk_rows(lin, k)
        vals = torch.relu(vals).to(xc.dtype)  # under autocast `lin` is bf16/fp16; the code stays fp32
        if k_aux > 0:
            # ranked before the ReLU, as the dense path ranks them (a dead latent's ReLU is usually 0)
            a_lin, a_idx = lin.masked_fill(~dead_mask, float("-inf")).topk(k_aux, dim=-1, sorted=False)
            a_vals = torch.relu(a_lin).to(xc.dtype)
        else:
            a_vals = vals.new_zeros(vals.shape[0], 0)
            a_idx = idx.new_zeros(idx.shape[0], 0)
        ctx.save_for_backward(xc, W_enc, vals, idx, a_vals, a_idx)
        ctx.shared = shared
        ctx.mark_non_differentiable(idx, a_idx)
        return vals, idx, a_vals, a_idx

    @staticmethod
    def backward(ctx, g_vals, _g_idx, g_avals, _g_aidx):
        xc, W_enc, vals, idx, a_vals, a_idx = ctx.saved_tensors
        # ReLU: gradient only where the value is positive (PyTorch's ReLU passes none at 0)
        g = (g_vals * (vals > 0)).to(W_enc.dtype)
        if a_idx.shape[1]:
            g = torch.cat([g, (g_avals * (a_vals > 0)).to(W_enc.dtype)], 1)
            rows = torch.cat([idx, a_idx], 1)
            structure = None
        else:
            rows = idx
            structure = ctx.shared.get("csr")  # the decoder's backward sorted the same rows first
        batch, width = rows.shape
        flat_rows, flat_g = rows.reshape(-1), g.reshape(-1)
        grad_b = torch.zeros(W_enc.shape[0], dtype=g.dtype, device=g.device).index_add_(0, flat_rows, flat_g)
        grad_W = _rows_times(flat_rows, flat_g, width, W_enc.shape[0], xc, structure)
        grad_x = None
        if ctx.needs_input_grad[0]:  # never in training: the input's gradient, row by row
            grad_x = F.embedding_bag(rows, W_enc, per_sample_weights=g, mode="sum")
            grad_b_pre = -grad_x.sum(0)
        else:  # b_pre's gradient needs only the column sums: -sum_j (sum of g on latent j) W_enc[j]
            grad_b_pre = -(grad_b.unsqueeze(0) @ W_enc).squeeze(0)
        return grad_x, grad_b_pre, grad_W, grad_b, None, None, None, None


def csr_structure(rows: torch.Tensor, per_token: int, n_rows: int, batch: int) -> tuple:
    """(order, column indices, row pointers) of the sparse [n_rows, batch] matrix whose entry i sits
    at (rows[i], i // per_token): computed once a step, used by both weight gradients."""
    order = torch.argsort(rows)
    cols = torch.arange(batch, device=rows.device).repeat_interleave(per_token)[order]
    crow = torch.zeros(n_rows + 1, dtype=torch.long, device=rows.device)
    crow[1:] = torch.bincount(rows, minlength=n_rows).cumsum(0)
    return order, cols, crow


def _rows_times(rows: torch.Tensor, weights: torch.Tensor, per_token: int, n_rows: int, x: torch.Tensor,
                structure: tuple | None = None):  # fmt: skip
    """S @ x for the sparse [n_rows, batch] matrix with S[rows[i], i // per_token] = weights[i]: the
    weight gradient from a sparse pre-activation gradient. As CSR, which measured about twice as
    fast as COO here (11 vs 21 ms at 4,096 tokens x 32 latents x 768)."""
    order, cols, crow = structure or csr_structure(rows, per_token, n_rows, x.shape[0])
    with warnings.catch_warnings():  # "CSR support is in beta": this product is all it is used for
        warnings.simplefilter("ignore", UserWarning)
        s = torch.sparse_csr_tensor(crow, cols, weights[order], (n_rows, x.shape[0]), check_invariants=False)
    with torch.autocast(x.device.type, enabled=False):  # sparse kernels are fp32 (and fp64) only
        return s @ x.float()


_POOL: tuple[int, ThreadPoolExecutor] | None = None  # (threads, pool), rebuilt if torch's thread count changes


def topk_rows(lin: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(values, indices) of each row's k largest entries, unsorted, values in `lin`'s dtype.

    `torch.topk` on a CPU selects by nth_element when 64 k > columns, and there NumPy's introselect
    (`argpartition`), run over row blocks on torch's thread count, measured twice as fast here (12
    vs 26 ms for [4,096, 1,536], k 32, 2 threads); with more columns torch switches to a partial sort
    and both take the same time (~25 ms at 3,072), so torch's stays. bf16 rows (CPU autocast) are
    read as fp32 for NumPy (1 ms at 1,536 columns)."""
    global _POOL
    n_threads = torch.get_num_threads()
    fits = lin.device.type == "cpu" and lin.dtype in (torch.float32, torch.bfloat16) and lin.ndim == 2
    if not fits or lin.requires_grad or 64 * k <= lin.shape[1]:
        return lin.topk(k, dim=-1, sorted=False)
    a = lin.float().numpy()
    cut = lin.shape[1] - k

    def block(s: slice) -> np.ndarray:
        return np.argpartition(a[s], cut, axis=1)[:, cut:]

    if n_threads > 1 and len(a) >= 2 * n_threads:
        if _POOL is None or _POOL[0] != n_threads:
            _POOL = (n_threads, ThreadPoolExecutor(n_threads, thread_name_prefix="snce-topk"))
        step = -(-len(a) // n_threads)
        idx = np.concatenate(list(_POOL[1].map(block, [slice(i, i + step) for i in range(0, len(a), step)])))
    else:
        idx = block(slice(None))
    idx = torch.from_numpy(idx)
    return lin.gather(1, idx), idx


class _DecoderWeightGrad(torch.autograd.Function):
    """Identity on the reconstruction; in backward, W_dec's gradient from the sparse code as a CSR
    product (batch x k non-zeros) instead of `embedding_bag`'s dense backward (13.5 of 85 ms a step
    at 384 -> 1,536 here)."""

    @staticmethod
    def forward(ctx, out, W_dec, idx, vals, shared):
        ctx.save_for_backward(idx, vals)
        ctx.shape, ctx.shared = W_dec.shape, shared
        return out.view_as(out)

    @staticmethod
    def backward(ctx, g):
        idx, vals = ctx.saved_tensors
        m, _ = ctx.shape
        structure = csr_structure(idx.reshape(-1), idx.shape[1], m, len(idx))
        if ctx.shared is not None:
            ctx.shared["csr"] = structure
        grad_w = _rows_times(idx.reshape(-1), vals.reshape(-1).to(g.dtype), idx.shape[1], m, g, structure)
        return g, grad_w, None, None, None


def decode(idx: torch.Tensor, vals: torch.Tensor, W_dec: torch.Tensor, shared: dict | None = None) -> torch.Tensor:
    """sum_j vals[:, j] W_dec[idx[:, j]]: `embedding_bag` forward and values' gradient, the CSR
    product for W_dec's gradient (its structure left in `shared` for the encoder's backward)."""
    out = F.embedding_bag(idx, W_dec.detach(), per_sample_weights=vals, mode="sum")
    return _DecoderWeightGrad.apply(out, W_dec, idx, vals.detach(), shared)


def sparse_forward(sae, x: torch.Tensor, dead_mask: torch.Tensor | None, k_aux: int):
    """(reconstruction, vals, idx, fvu, auxk) as `TopKSAE.forward` computes them, on the sparse path.

    AuxK looks at min(k_aux, dead latents) latents a token, and is skipped when none is dead, as in the
    dense path. Counting the dead costs one host sync a step; padding the count to k_aux instead
    would avoid it but, measured here, made a step slower than the dense path (k_aux = d/2 = 384
    extra decoder rows a token while no latent is dead)."""
    x = x.to(sae.W_enc.dtype)
    n_dead = int(dead_mask.sum()) if dead_mask is not None and k_aux > 0 else 0
    k_eff = min(k_aux, n_dead)
    mask = dead_mask if k_eff else torch.zeros(sae.cfg.n_latents, dtype=torch.bool, device=x.device)
    shared: dict = {}  # the decoder's backward (first to run) leaves the rows' CSR structure here
    vals, idx, a_vals, a_idx = _TopKEncode.apply(x, sae.b_pre, sae.W_enc, sae.b_enc, sae.cfg.k, mask, k_eff, shared)
    out = decode(idx, vals, sae.W_dec, shared) + sae.b_pre
    err = x - out
    # as written, not F.mse_loss or x.var(0): those measured 2x and 5x slower here
    fvu = err.pow(2).sum() / (x - x.mean(0)).pow(2).sum()
    auxk = x.new_zeros(())
    if k_eff:
        e_hat = decode(a_idx, a_vals, sae.W_dec)
        e = err.detach()
        auxk = (e_hat - e).pow(2).sum() / (e - e.mean(0)).pow(2).sum().clamp_min(1e-12)
        auxk = torch.nan_to_num(auxk, nan=0.0)
    return out, vals, idx, fvu, auxk
