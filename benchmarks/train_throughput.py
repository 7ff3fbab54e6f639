"""SAE training throughput: snce (sparse and dense paths) vs SAELens vs EleutherAI sparsify, same rows.

    python benchmarks/train_throughput.py [--store DIR] [--shapes 768x3072 384x1536] [--steps 30] [--device cpu]

Every trainer gets the same batches (batch 4,096, k 32, Adam at lr 4e-4, AuxK with k_aux = d/2 at
1/32), in alternation (A B C D A B C D ...) so that machine drift hits all of them alike. Prints
each trainer's tokens/s, the ratios, and held-out FVU after the same number of tokens. Rows: an
activation store from `snce collect` (`--store`), or seeded correlated Gaussian rows.

The peers are optional: `pip install ".[bench]"` (SAELens and sparsify, over the torch already
installed). A peer that is not installed is reported as such. On a GPU, pass `--device cuda` (or run
`bash benchmarks/gpu_train.sh`): the same comparison, every trainer under bf16 autocast where the
GPU supports it (fp16 with loss scaling for snce otherwise) and fp32 weights, timed with a
synchronise around each step. On a CPU with AMX, snce's default trains under bf16 autocast
(`snce_lib.sae.train.cpu_has_fast_bf16`; weights fp32) while the peers run their CPU default,
fp32; `--peers-bf16` runs the peers under the same autocast.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from snce_lib.sae.config import TrainConfig
from snce_lib.sae.model import SAEConfig, TopKSAE
from snce_lib.sae.train import autocast_dtype, init_from_sample_, make_optimizer, training_step

K, BATCH, LR = 32, 4096, 4e-4


def correlated_rows(n: int, d: int, seed: int = 0) -> torch.Tensor:
    """Gaussian rows with a decaying spectrum (like block features: a few strong directions)."""
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(d, d, generator=g) * (torch.arange(1, d + 1).float() ** -0.7)[:, None]
    return torch.randn(n, d, generator=g) @ mix + torch.randn(d, generator=g)


def held_out_fvu(encode_decode, x: torch.Tensor) -> float:
    with torch.no_grad():
        rec = torch.cat([encode_decode(x[s : s + 4096]) for s in range(0, len(x), 4096)])
    return float((x - rec).pow(2).sum() / (x - x.mean(0)).pow(2).sum())


class Snce:
    def __init__(self, d, m, device, sparse: bool):
        self.name = f"snce ({'sparse' if sparse else 'dense'})"
        self.sae = TopKSAE(SAEConfig(d, m, K)).to(device)
        self.sae.reset_parameters(torch.Generator().manual_seed(0))
        self.sae.to(device)
        self.cfg = TrainConfig(k=K, batch_size=BATCH, lr=LR, device=str(device))
        self.opt = make_optimizer(self.sae, self.cfg)
        self.amp = autocast_dtype("auto", torch.device(device))
        self.scaler = torch.amp.GradScaler(torch.device(device).type, enabled=self.amp == torch.float16)
        self.since = torch.zeros(m, dtype=torch.long, device=device)
        self.sparse, self.k_aux = sparse, d // 2

    def init(self, sample):
        init_from_sample_(self.sae, sample, self.cfg)  # as train_sae starts: b_pre, then the encoder's scale

    def step(self, x):
        training_step(self.sae, self.opt, self.scaler, x, self.since, self.cfg, self.k_aux, self.amp, self.sparse)

    def reconstruct(self, x):
        return self.sae.decode(*self.sae.encode(x))


PEERS_BF16_ON_CPU = False  # --peers-bf16


def peer_autocast(device: str):
    """The autocast a peer trains under: bf16 on a GPU that has it (as sparsify's own trainer does),
    and on a CPU with --peers-bf16 (what snce's default does on a CPU with AMX); else none."""
    if device.startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=torch.cuda.is_bf16_supported())
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=PEERS_BF16_ON_CPU)


class Sparsify:
    name = "sparsify"

    def __init__(self, d, m, device):
        from sparsify import SparseCoder, SparseCoderConfig

        torch.manual_seed(0)
        self.sae = SparseCoder(d, SparseCoderConfig(num_latents=m, k=K), device=device)
        self.opt = torch.optim.Adam(self.sae.parameters(), lr=LR)
        self.since = torch.zeros(m, dtype=torch.long, device=device)

    def init(self, sample):
        with torch.no_grad():
            self.sae.b_dec.copy_(sample.mean(0))

    def step(self, x):
        # sparsify's own trainer step: its forward (fused encoder, sparse decoder), AuxK, projection, renorm
        with peer_autocast(str(x.device)):
            out = self.sae(x, dead_mask=self.since >= 10_000_000)
            loss = out.fvu + out.auxk_loss / 32
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.sae.remove_gradient_parallel_to_decoder_directions()
        self.opt.step()
        self.sae.set_decoder_norm_to_unit_norm()
        with torch.no_grad():
            self.since += len(x)
            self.since[out.latent_indices.flatten()] = 0

    def reconstruct(self, x):
        return self.sae(x).sae_out


class SAELens:
    name = "SAELens"

    def __init__(self, d, m, device):
        from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig

        torch.manual_seed(0)
        self.sae = TopKTrainingSAE(
            TopKTrainingSAEConfig(d_in=d, d_sae=m, k=K, aux_loss_coefficient=1 / 32, device=str(device))
        )
        self.opt = torch.optim.Adam(self.sae.parameters(), lr=LR)
        self.since = torch.zeros(m, dtype=torch.long, device=device)
        self.n = 0

    def init(self, sample):
        with torch.no_grad():
            self.sae.b_dec.copy_(sample.mean(0))

    def step(self, x):
        from sae_lens.saes.sae import TrainStepInput

        self.n += 1
        step_in = TrainStepInput(x, {}, self.since >= 10_000_000, self.n, False)
        with peer_autocast(str(x.device)):
            out = self.sae.training_forward_pass(step_in)
        self.opt.zero_grad(set_to_none=True)
        out.loss.backward()
        self.opt.step()
        with torch.no_grad():
            self.since += len(x)
            self.since[(out.feature_acts > 0).any(0)] = 0

    def reconstruct(self, x):
        return self.sae(x)


def run_shape(d: int, m: int, rows: torch.Tensor, steps: int, device: str) -> list[dict]:
    held, train = rows[:8192].to(device), rows[8192:]
    trainers = [Snce(d, m, device, sparse=True), Snce(d, m, device, sparse=False)]
    missing = []
    for cls in (Sparsify, SAELens):
        try:
            trainers.append(cls(d, m, device))
        except ImportError:
            missing.append(cls.name)
    sample = train[:32768].to(device)
    for t in trainers:
        t.init(sample)
    seconds = {t.name: 0.0 for t in trainers}
    for s in range(steps):
        x = train[(s * BATCH) % (len(train) - BATCH) :][:BATCH].to(device)
        for t in trainers:  # alternation: drift hits every trainer alike
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            t.step(x)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            if s > 0:  # the first step warms caches and allocators
                seconds[t.name] += time.perf_counter() - t0
    out = []
    for t in trainers:
        tps = (steps - 1) * BATCH / seconds[t.name]
        out.append({"shape": f"{d}->{m}", "trainer": t.name, "tokens_per_s": tps,
                    "fvu_held_out": held_out_fvu(t.reconstruct, held), "tokens": steps * BATCH})  # fmt: skip
    for name in missing:
        out.append({"shape": f"{d}->{m}", "trainer": name, "tokens_per_s": None, "fvu_held_out": None, "tokens": 0})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", default=None, help="activation store from `snce collect` (its width fixes the shape)")
    ap.add_argument("--shapes", nargs="+", default=["768x3072", "384x1536"])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--peers-bf16", action="store_true", help="train the peers under bf16 autocast on a CPU too")
    a = ap.parse_args()
    global PEERS_BF16_ON_CPU
    PEERS_BF16_ON_CPU = a.peers_bf16
    amp = autocast_dtype("auto", torch.device(a.device))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {a.device}; batch {BATCH}, k {K}, "
          f"Adam lr {LR}, {a.steps} steps each (first not timed), in alternation; snce autocast {amp}, "
          f"peers {'bf16' if a.peers_bf16 or a.device.startswith('cuda') else 'fp32'}")  # fmt: skip
    results = []
    if a.store:
        from snce_lib.sae.store import ActivationStore

        rows = torch.as_tensor(np.asarray(ActivationStore(a.store).load(), dtype=np.float32))
        d = rows.shape[1]
        results += run_shape(
            d, 4 * d, rows[torch.randperm(len(rows), generator=torch.Generator().manual_seed(0))], a.steps, a.device
        )
    else:
        for shape in a.shapes:
            d, m = (int(v) for v in shape.split("x"))
            results += run_shape(d, m, correlated_rows(8192 + a.steps * BATCH, d), a.steps, a.device)
    for shape in dict.fromkeys(r["shape"] for r in results):
        rows = [r for r in results if r["shape"] == shape]
        ours = next(r for r in rows if r["trainer"] == "snce (sparse)")
        print(f"\n{shape}: {'trainer':<16} {'tokens/s':>10} {'snce sparse / it':>17} {'held-out FVU':>13}")
        for r in rows:
            if r["tokens_per_s"] is None:
                print(f"{'':>{len(shape) + 1}} {r['trainer']:<16} {'not installed':>10}")
                continue
            ratio = ours["tokens_per_s"] / r["tokens_per_s"]
            print(
                f"{'':>{len(shape) + 1}} {r['trainer']:<16} {r['tokens_per_s']:>10,.0f} {ratio:>16.2f}x {r['fvu_held_out']:>13.4f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
