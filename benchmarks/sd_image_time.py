"""Seconds per 512 px image of SD v1.4's pipeline (fp16 on a GPU) and its peak GPU memory, measured on
the colab rehearsal's real-size random-weight stand-ins: the same modules as SD v1.4, so the same cost
(what they draw means nothing).

    python benchmarks/sd_image_time.py [--batch 1 4 8] [--steps 10] [--device cuda] [--resolution 512]

For each batch size (prompts at once; classifier-free guidance doubles the UNet's batch): seconds per
image-step of the denoising loop, the VAE decode per image, one image at 50 steps from those two, and
the peak GPU memory torch allocated. One JSON line each. Builds the stand-ins first if they are not
there (`snce_lib.workbook.rehearsal`, about 5 GB, once). Run it under benchmarks/t4_cap.py to hold a
larger GPU to a T4's 15 GB.
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 4, 8])
    ap.add_argument("--steps", type=int, default=10, help="denoising steps timed (50 are extrapolated)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--resolution", type=int, default=512)
    a = ap.parse_args()

    from snce_lib.models.encoders import SD14
    from snce_lib.models.hubcache import REVISION
    from snce_lib.models.pipelines import load_pipeline
    from snce_lib.workbook.rehearsal import prepare

    env = prepare()
    snapshot = f"{env['HF_HOME']}/hub/models--{SD14.replace('/', '--')}/snapshots/{REVISION}"
    device = torch.device(a.device)
    pipe = load_pipeline(snapshot, device=device)  # fp16 on a GPU, as the workbook loads it
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else "CPU"
    px = a.resolution
    pipe(["warm up"], num_inference_steps=1, height=px, width=px, output_type="np")
    for b in a.batch:
        prompts = [f"a photo of a cat, number {i}" for i in range(b)]
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        sync(device)
        t0 = time.perf_counter()
        latents = pipe(prompts, num_inference_steps=a.steps, height=px, width=px, output_type="latent").images
        sync(device)
        t1 = time.perf_counter()
        with torch.no_grad():
            pipe.vae.decode(latents / pipe.vae.config.scaling_factor)
        sync(device)
        t2 = time.perf_counter()
        step = (t1 - t0) / (a.steps * b)
        decode = (t2 - t1) / b
        print(json.dumps({
            "device": name, "dtype": str(pipe.unet.dtype), "resolution": px, "batch": b, "steps_timed": a.steps,
            "seconds_per_image_step": round(step, 4), "vae_decode_seconds_per_image": round(decode, 4),
            "seconds_per_image_at_50_steps": round(50 * step + decode, 3),
            "peak_gpu_gb": round(torch.cuda.max_memory_allocated() / 1e9, 2) if device.type == "cuda" else None,
        }), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
