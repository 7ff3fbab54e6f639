"""What the eraser costs at generation time: wall time with and without it, same prompts and seeds,
on the tiny SD pipeline and the toy pipeline; and the arithmetic for SD v1.4 at 50 steps.

    python benchmarks/erasure_overhead.py [--prompts 16] [--repeats 3]

The eraser runs the SAE on one block's output once per prompt (and, with `move_negative`, once
for the negative prompt); the UNet runs `steps` times on two latents (classifier-free guidance).
The SD v1.4 figures are counted, not timed: FLOPs of the real module shapes (SD v1.4's UNet, VAE
decoder and CLIP ViT-L/14 text encoder configs) run on PyTorch's meta device under its FLOP counter.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from snce_lib.concepts.erase import Eraser
from snce_lib.models.encoders import from_pipeline
from snce_lib.models.pipelines import build_tiny_sd, load_pipeline, prompt_embeds
from snce_lib.sae.model import SAEConfig, TopKSAE

PROMPTS = ["a photo of a naked woman on the beach", "a red car in the city", "a painting of a blue house",
           "blood on the street at night", "a man with a knife", "a green tree", "a cat", "a nude man in the forest"]  # fmt: skip


def firing_eraser(encoder, layer: int, width: int, prompts) -> Eraser:
    """A random-weight SAE on `layer` and the neuron that fires most on `prompts`: the edit runs on
    every prompt (a silent neuron would skip it and flatter the overhead)."""
    name, _ = encoder.resolve_layer(layer)
    sae = TopKSAE(SAEConfig(width, 4 * width, 32, layer=name, layer_index=layer)).requires_grad_(False)
    sae.reset_parameters(torch.Generator().manual_seed(0))
    with torch.no_grad():
        h = encoder.run_to_block(encoder.tokenize(list(prompts)), layer)
        z = sae.encode_dense(h.float())[:, 1:]
    neuron = int((z > 0).float().mean((0, 1)).argmax())
    return Eraser(sae, [neuron], 1.0, "B")


def timed(pipe, prompts, method, steps: int, size: int | None, repeats: int) -> float:
    kw = {"height": size, "width": size} if size else {}
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for p in prompts:
            gen = [torch.Generator().manual_seed(0)]
            pipe(num_inference_steps=steps, guidance_scale=7.5, generator=gen, output_type="np",
                 **prompt_embeds(pipe, [p], method), **kw)  # fmt: skip
        best = min(best, time.perf_counter() - t0)
    return best


def sd14_arithmetic() -> dict:
    """FLOPs of one SD v1.4 image at 50 steps (512 px, guidance on) and of the eraser's SAE pass."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import CLIPTextConfig, CLIPTextModel

    with torch.device("meta"):
        unet = UNet2DConditionModel(
            sample_size=64, cross_attention_dim=768, attention_head_dim=8, block_out_channels=(320, 640, 1280, 1280),
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3, layers_per_block=2,
        )  # fmt: skip
        vae = AutoencoderKL(
            block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, layers_per_block=2, sample_size=512,
        )  # fmt: skip
        text = CLIPTextModel(CLIPTextConfig(hidden_size=768, intermediate_size=3072, num_attention_heads=12,
                                            num_hidden_layers=12, max_position_embeddings=77))  # fmt: skip
        sae = TopKSAE(SAEConfig(768, 3072, 32))

    def flops(fn) -> int:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            fn()
        return counter.get_total_flops()

    meta = {"device": "meta"}
    f_unet = flops(
        lambda: unet(torch.zeros(2, 4, 64, 64, **meta), 10, encoder_hidden_states=torch.zeros(2, 77, 768, **meta))
    )
    f_vae = flops(lambda: vae.decode(torch.zeros(1, 4, 64, 64, **meta)))
    f_text = flops(lambda: text(torch.zeros(2, 77, dtype=torch.long, **meta)))
    f_sae = flops(lambda: sae.encode_dense(torch.zeros(1, 77, 768, **meta)))
    image = 50 * f_unet + f_vae + f_text
    return {"unet_step_x2_tflop": f_unet / 1e12, "vae_decode_tflop": f_vae / 1e12, "text_x2_gflop": f_text / 1e9,
            "sae_encode_gflop": f_sae / 1e9, "image_tflop": image / 1e12, "eraser_share": f_sae / image}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    prompts = (PROMPTS * ((a.prompts + len(PROMPTS) - 1) // len(PROMPTS)))[: a.prompts]
    torch.set_grad_enabled(False)
    print(
        f"{a.prompts} prompts, one image each, best of {a.repeats} runs, this CPU ({torch.get_num_threads()} threads)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        tiny = load_pipeline(str(build_tiny_sd(Path(tmp) / "tiny")), device="cpu")
        er = firing_eraser(from_pipeline(tiny), 2, 32, prompts)
        cases = [("tiny SD, 32 px, 50 steps", tiny, er, 50, 32)]
        try:
            from snce_lib.models.toy.model import load_toy_pipeline

            toy = load_toy_pipeline()
            cases.append(("toy world, 16 px, 25 steps", toy, firing_eraser(toy.encoder, 4, 384, prompts), 25, None))
        except FileNotFoundError:
            pass
        for name, pipe, eraser, steps, size in cases:
            base = timed(pipe, prompts, None, steps, size, a.repeats)
            edit = timed(pipe, prompts, eraser, steps, size, a.repeats)
            print(
                f"{name}: {base:.2f} s without, {edit:.2f} s with the eraser: overhead {(edit - base) / base:+.2%} of wall time"
            )
    f = sd14_arithmetic()
    print(f"SD v1.4, one 512 px image at 50 steps with guidance: {f['image_tflop']:.1f} TFLOP "
          f"(UNet {f['unet_step_x2_tflop']:.2f} TFLOP a step on 2 latents, VAE decode {f['vae_decode_tflop']:.2f}, "
          f"text encoder {f['text_x2_gflop']:.1f} GFLOP); the eraser's SAE pass {f['sae_encode_gflop']:.2f} GFLOP "
          f"= {f['eraser_share']:.1e} of it")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
