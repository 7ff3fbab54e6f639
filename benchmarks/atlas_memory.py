"""Peak RAM of the atlas step (notebook 02) at three sizes, and its extrapolation to the colab profile.

    python benchmarks/atlas_memory.py [--sizes 250 500 1000]

Each size runs in a fresh process: a random-weight CLIP text encoder of SD v1.4's shape (768 wide,
12 blocks, 77 positions), a random 3,072-latent TopK SAE (k 32) on block 9, and notebook 02's whole
atlas step over N prompts from the project's corpus: `explore` (codes, labels, both maps and their
clusters, the nudity score, the page's data), a word search, and the HTML page. It prints peak RSS
(ru_maxrss) for each N, the fitted RSS = a + b N, and the value at N = 5,000 (the colab profile's
atlas sample) against the 6 GB target. Random weights do not change the memory, only the meaning.
"""

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, torch
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer
from snce_lib.models.encoders import TextEncoder
from snce_lib.atlas.explore import explore
from snce_lib.atlas.html import render_html
from snce_lib.atlas.cards import search_features
from snce_lib.models.tiny import tiny_clip_tokenizer
from snce_lib.prompts import read_prompts
from snce_lib.resources import data_path
from snce_lib.sae.model import SAEConfig, TopKSAE
n = int(sys.argv[1]); torch.manual_seed(0); torch.set_num_threads(2)
tok = tiny_clip_tokenizer(sys.argv[2])
model = CLIPTextModel(CLIPTextConfig(vocab_size=len(tok), hidden_size=768, intermediate_size=3072, num_attention_heads=12,
                                     num_hidden_layers=12, max_position_embeddings=77)).eval().requires_grad_(False)
enc = TextEncoder(model, tok, "random-clip-768", "clip", 77, False)
sae = TopKSAE(SAEConfig(768, 3072, 32, "random-clip-768", "encoder.layers.9", 9)); sae.reset_parameters(torch.Generator().manual_seed(0))
prompts = (read_prompts(data_path("corpus.csv")) * 2)[:n]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
ex = explore(enc, sae.requires_grad_(False), prompts, concept="nudity", progress=False)
atlas = ex.atlas
search_features(atlas, "red")
page = render_html(ex.page)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"n": n, "peak_mb": peak / 1024, "before_atlas_mb": base / 1024, "page_mb": len(page) / 2**20,
                  "codes_mb": (atlas.codes.values.nbytes + atlas.codes.indices.nbytes) / 2**20}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[250, 500, 1000])
    ap.add_argument("--target", type=int, default=5000)
    a = ap.parse_args()
    import tempfile

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in a.sizes:
            out = subprocess.run([sys.executable, "-c", CHILD, str(n), f"{tmp}/tok{n}"], capture_output=True, text=True)
            if out.returncode:
                sys.exit(out.stderr[-2000:])
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            r = rows[-1]
            print(
                f"N = {n:>5}: peak RSS {r['peak_mb']:7.0f} MB (before the atlas {r['before_atlas_mb']:.0f} MB; "
                f"sparse codes {r['codes_mb']:.1f} MB; HTML page {r['page_mb']:.1f} MB)"
            )
    import numpy as np

    if len(rows) < 2:  # measured at one size: nothing to fit
        r = rows[0]
        print(
            f"measured at N = {r['n']:,}: {r['peak_mb']:,.0f} MB ({'under' if r['peak_mb'] < 6000 else 'OVER'} the 6 GB target)"
        )
        return
    b, a0 = np.polyfit([r["n"] for r in rows], [r["peak_mb"] for r in rows], 1)
    est = a0 + b * a.target
    print(f"fit: peak RSS = {a0:.0f} MB + {b * 1000:.1f} MB per 1,000 prompts")
    print(
        f"extrapolated to N = {a.target:,} (colab profile): {est:,.0f} MB "
        f"({'under' if est < 6000 else 'OVER'} the 6 GB target); a dense float32 code would add "
        f"{a.target * 76 * 3072 * 4 / 2**30:.2f} GiB before any copy"
    )


if __name__ == "__main__":
    main()
