"""The main job on the offline default, as one function the CLI and notebooks share."""
from __future__ import annotations

import json
import time
from pathlib import Path

from .io import atomic_write_json

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "data" / "corpus.csv"


def run_offline(out: str | Path = "runs/offline", tokens: int = 2_000_000, progress: bool = True) -> dict:
    """Collect MiniLM block features of the project's corpus, train the SAE, report metrics."""
    from .activations import collect
    from .encoders import load_offline
    from .prompts import read_prompts
    from .train import TrainConfig, train_sae

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    enc = load_offline()
    prompts = read_prompts(CORPUS)
    store = collect(enc, prompts, out / "activations", progress=progress)
    t1 = time.perf_counter()
    cfg = TrainConfig(tokens=tokens, dead_after_tokens=min(10_000_000, max(tokens // 10, 100_000)))
    res = train_sae(store.load(), cfg, out_dir=out / "sae", encoder_id=store.info.encoder_id,
                    layer=store.info.layer, layer_index=store.info.layer_index, progress=progress)
    summary = {
        "encoder": store.info.encoder_id,
        "layer": store.info.layer,
        "prompts": store.info.n_prompts,
        "store_rows": len(store),
        "store_bytes": store.nbytes,
        "collect_seconds": round(t1 - t0, 1),
        "sae": str(out / "sae"),
        **{k: res.metrics[k] for k in ("fvu", "l0", "dead_fraction", "tokens_seen", "seconds", "tokens_per_second")},
    }
    atomic_write_json(out / "summary.json", summary)
    return summary
