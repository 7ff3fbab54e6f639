"""The toy text-to-image model: a frozen text encoder's token features condition a small pixel-space UNet.

Two worlds differ only in that encoder: "minilm" (the offline MiniLM, bidirectional, 384 wide) and
"clip" (a small CLIP text transformer trained here on the world, `snce_lib.models.toy.clip`: causal,
BOS/EOS, end-token padding, final LayerNorm, as SD v1.4's). Renders, detector, UNet sizes, training
recipe and sampler are the same.

`ToyPipeline` speaks the Stable Diffusion pipeline's language where the workbook needs it:
`text_encoder`, `tokenizer` (padding to 16 tokens) and `__call__(prompt | prompt_embeds=...,
negative_prompt_embeds=..., generator=[...])`, so erasure methods condition it exactly as they
condition a diffusers pipeline (`snce_lib.models.pipelines.prompt_embeds`).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from snce_lib.io import atomic_save_safetensors, atomic_write_json
from snce_lib.models.encoders import TextEncoder, load_offline
from snce_lib.models.toy.world import SIZE, dataset, render
from snce_lib.resources import data_path

MAX_LENGTH = 16  # toy captions are short; 16 MiniLM tokens hold every one of them
WORLDS = {"minilm": "toy", "clip": "toy_clip"}  # world -> folder under data/


def world_folder(world: str = "minilm") -> Path:
    if world not in WORLDS:
        raise ValueError(f"unknown toy world {world!r}; worlds: {', '.join(WORLDS)}")
    return data_path(WORLDS[world])


@dataclass
class ToyConfig:
    size: int = SIZE
    channels: tuple = (32, 64, 64)
    max_length: int = MAX_LENGTH
    """Padded prompt length, recorded from the encoder (MiniLM world 16; the CLIP world's tokenizer pads to 24)."""
    cond_drop: float = 0.1
    """Share of training captions replaced by the empty prompt, for classifier-free guidance."""
    train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"
    lr: float = 2e-3
    batch_size: int = 64
    steps: int = 4000
    ema: float = 0.995
    n_captions: int = 20000
    seed: int = 0
    encoder: str = "minilm"
    """The world: "minilm" or "clip" (whose encoder lives in the world folder's `encoder/`)."""


def build_unet(cfg: ToyConfig, cross_attention_dim: int = 384):
    from diffusers import UNet2DConditionModel

    n = len(cfg.channels)
    return UNet2DConditionModel(
        sample_size=cfg.size,
        in_channels=3,
        out_channels=3,
        block_out_channels=tuple(cfg.channels),
        layers_per_block=1,
        down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (n - 1),
        up_block_types=("CrossAttnUpBlock2D",) * (n - 1) + ("UpBlock2D",),
        cross_attention_dim=cross_attention_dim,
        attention_head_dim=8,
        norm_num_groups=16,
    )


def toy_encoder(device=None, world: str = "minilm", folder: Path | str | None = None) -> TextEncoder:
    """The world's frozen text encoder; the CLIP world's from `folder`/encoder (default: the committed one)."""
    if world == "minilm":
        return load_offline(device=device, fp16=False, max_length=MAX_LENGTH)
    from snce_lib.models.encoders import load_sd

    enc_dir = Path(folder or world_folder(world)) / "encoder"
    if not (enc_dir / "config.json").exists():
        raise FileNotFoundError(
            f"no CLIP-world encoder in {enc_dir}; train it with `python scripts/train_toy.py --world clip`"
        )
    enc = load_sd(str(enc_dir), device=device, fp16=False)
    enc.encoder_id = f"toy-{world}"
    return enc


class _Output:
    def __init__(self, images):
        self.images = images


class ToyPipeline:
    snce_family = "sd1"  # conditioned as SD v1 is: one encoder, its last hidden state as prompt_embeds

    def __init__(self, unet, encoder: TextEncoder, cfg: ToyConfig):
        from diffusers import DDIMScheduler

        self.unet = unet.eval().requires_grad_(False)
        self.text_encoder = encoder.model
        self.tokenizer = encoder.tokenizer
        self.tokenizer.model_max_length = encoder.max_length  # so the pipeline's encoder pads as the UNet was trained
        self.cfg = cfg
        self.scheduler = DDIMScheduler(
            num_train_timesteps=cfg.train_timesteps,
            beta_schedule=cfg.beta_schedule,
            clip_sample=True,
            set_alpha_to_one=True,
        )
        self.name_or_path = "toy" if cfg.encoder == "minilm" else f"toy-{cfg.encoder}"
        self._made: dict[tuple, np.ndarray] = {}  # generate's batches, by what decides their images

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    def set_progress_bar_config(self, **kw):
        pass

    @property
    def encoder(self) -> TextEncoder:
        """The text encoder as the pipeline calls it."""
        from snce_lib.models.encoders import from_pipeline

        return from_pipeline(self)

    @torch.no_grad()
    def __call__(
        self,
        prompt=None,
        num_inference_steps: int = 25,
        guidance_scale: float = 3.0,
        generator=None,
        height=None,
        width=None,
        output_type: str = "np",
        prompt_embeds=None,
        negative_prompt_embeds=None,
        negative_prompt=None,
        **kw,
    ):
        cfg_on = guidance_scale > 1.0
        pe, ne = prompt_embeds, negative_prompt_embeds
        if pe is None or (cfg_on and ne is None):
            enc = self.encoder
            if pe is None:
                pe = enc.embed(enc.tokenize([prompt] if isinstance(prompt, str) else list(prompt)))
            negs = negative_prompt if isinstance(negative_prompt, list) else [negative_prompt or ""] * pe.shape[0]
            ne = enc.embed(enc.tokenize(negs)) if ne is None else ne
        n = pe.shape[0]
        gens = generator if isinstance(generator, (list, tuple)) else [generator] * n
        x = torch.stack([torch.randn(3, self.cfg.size, self.cfg.size, generator=g) for g in gens]).to(self.device)
        self.scheduler.set_timesteps(num_inference_steps)
        cond = torch.cat([ne, pe]) if cfg_on else pe
        for t in self.scheduler.timesteps:
            inp = torch.cat([x, x]) if cfg_on else x
            eps = self.unet(inp, t, encoder_hidden_states=cond).sample
            if cfg_on:
                e_u, e_c = eps.chunk(2)
                eps = e_u + guidance_scale * (e_c - e_u)
            x = self.scheduler.step(eps, t, x).prev_sample
        img = ((x.clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).cpu().numpy()
        return _Output(img)

    def generate(
        self,
        prompts: Sequence[str],
        seeds: Sequence[int],
        steps: int = 25,
        guidance: float = 3.0,
        batch_size: int = 64,
        method=None,
    ) -> np.ndarray:
        """uint8 images [N, size, size, 3], one per (prompt, seed); `method` edits the conditioning.

        A batch whose conditioning, seeds, steps and guidance equal an earlier batch's is not run again:
        its images are that batch's (the same computation on the same inputs). A table that sweeps an
        edit meets many: lambda 0 leaves the features as they were, and mode B leaves a prompt where
        the neuron is silent bit for bit unchanged."""
        from snce_lib.io import to_uint8
        from snce_lib.models.pipelines import prompt_embeds

        out = []
        for s in range(0, len(prompts), batch_size):
            batch_seeds = [int(k) for k in seeds[s : s + batch_size]]
            cond = prompt_embeds(self, list(prompts[s : s + batch_size]), method)
            key = self._batch_key(cond, batch_seeds, steps, guidance)
            if key not in self._made:
                gens = [torch.Generator().manual_seed(k) for k in batch_seeds]
                self._made[key] = to_uint8(self(None, steps, guidance, gens, **cond).images)
            out.append(self._made[key])
        return np.concatenate(out)

    def _batch_key(self, cond: dict, seeds: list[int], steps: int, guidance: float) -> tuple:
        """What decides a batch's images bit for bit: its conditioning, seeds, steps and guidance, and the
        UNet's weights (their version counters move with any in-place update)."""
        import hashlib

        digest = hashlib.sha256()
        for name in ("prompt_embeds", "negative_prompt_embeds"):
            t = cond.get(name)
            if t is not None:
                digest.update(name.encode() + str(tuple(t.shape)).encode() + t.detach().cpu().numpy().tobytes())
        weights = sum(p._version for p in self.unet.parameters())
        return digest.hexdigest(), tuple(seeds), int(steps), float(guidance), weights


def save_toy(unet, cfg: ToyConfig, folder: Path, meta: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    atomic_save_safetensors(folder / "unet.safetensors", {k: v.half() for k, v in unet.state_dict().items()})
    atomic_write_json(
        folder / "toy.json",
        {"kind": "snce-toy-model", "config": {**cfg.__dict__, "channels": list(cfg.channels)}, **meta},
    )


def load_toy_pipeline(folder: Path | str | None = None, device=None) -> ToyPipeline:
    from safetensors.torch import load_file

    folder = Path(folder) if folder is not None else world_folder("minilm")
    meta_file = folder / "toy.json"
    if not meta_file.exists():
        raise FileNotFoundError(f"no toy model in {folder}; train one with `python scripts/train_toy.py`")
    meta = json.loads(meta_file.read_text())
    if meta.get("kind") != "snce-toy-model":
        raise ValueError(f"{meta_file} is not a toy model")
    c = dict(meta["config"])
    c["channels"] = tuple(c["channels"])
    cfg = ToyConfig(**{k: v for k, v in c.items() if k in ToyConfig.__dataclass_fields__})
    dev = torch.device(device or "cpu")
    enc = toy_encoder(dev, cfg.encoder, folder)
    unet = build_unet(cfg, enc.width)
    unet.load_state_dict({k: v.float() for k, v in load_file(str(folder / "unet.safetensors")).items()})
    return ToyPipeline(unet.to(dev), enc, cfg)


def load_world(world: str = "minilm", device=None) -> ToyPipeline:
    """The committed pipeline of a toy world ("minilm" or "clip")."""
    return load_toy_pipeline(world_folder(world), device)


@torch.no_grad()
def embed_captions(encoder: TextEncoder, captions: Sequence[str], batch_size: int = 256) -> torch.Tensor:
    return torch.cat(
        [
            encoder.embed(encoder.tokenize(list(captions[s : s + batch_size]))).cpu()
            for s in range(0, len(captions), batch_size)
        ]
    )


def train_toy(
    cfg: ToyConfig | None = None,
    out: Path | None = None,
    progress: bool = True,
    log_every: int = 100,
    snapshot_dir: Path | None = None,
    snapshot_every: int = 500,
) -> tuple[ToyPipeline, list[dict]]:
    """Train the toy UNet on rendered images and their captions (epsilon prediction, EMA weights)."""
    cfg = cfg or ToyConfig()
    from diffusers import DDPMScheduler

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    enc = toy_encoder("cpu", cfg.encoder, out)
    cfg.max_length = enc.max_length  # the record says what the UNet was trained on
    specs, caps = dataset(cfg.n_captions, cfg.seed)  # training words only, in both worlds
    images = torch.from_numpy(np.stack([render(s) for s in specs])).permute(0, 3, 1, 2).float() / 127.5 - 1
    t0 = time.perf_counter()
    emb = embed_captions(enc, caps)
    empty = embed_captions(enc, [""])[0]
    t_embed = time.perf_counter() - t0
    unet = build_unet(cfg, enc.width)
    ema = build_unet(cfg, enc.width)
    ema.load_state_dict(unet.state_dict())
    ema.requires_grad_(False)
    sched = DDPMScheduler(num_train_timesteps=cfg.train_timesteps, beta_schedule=cfg.beta_schedule)
    opt = torch.optim.AdamW(unet.parameters(), lr=cfg.lr, weight_decay=0.0)
    warm = max(1, min(100, cfg.steps // 10))

    def lr_at(s: int) -> float:  # linear warm-up, then cosine down to a tenth
        return (
            cfg.lr
            * min(1.0, (s + 1) / warm)
            * (0.5 * (1 + math.cos(math.pi * min(s, cfg.steps) / cfg.steps)) * 0.9 + 0.1)
        )

    history = []
    t0 = time.perf_counter()
    run = 0.0
    for step in tqdm(range(cfg.steps), desc="train toy UNet", disable=not progress):
        idx = torch.from_numpy(rng.integers(0, len(images), cfg.batch_size))
        x0 = images[idx]
        cond = emb[idx].clone()
        drop = torch.from_numpy(rng.random(cfg.batch_size) < cfg.cond_drop)
        cond[drop] = empty
        noise = torch.randn_like(x0)
        t = torch.randint(0, cfg.train_timesteps, (cfg.batch_size,))
        xt = sched.add_noise(x0, noise, t)
        loss = torch.nn.functional.mse_loss(unet(xt, t, encoder_hidden_states=cond).sample, noise)
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            for pe, p in zip(ema.parameters(), unet.parameters()):
                pe.lerp_(p, 1 - cfg.ema)
        run = 0.98 * run + 0.02 * float(loss.detach()) if step else float(loss.detach())
        if (step + 1) % log_every == 0:
            history.append({"step": step + 1, "loss": run, "seconds": round(time.perf_counter() - t0, 1)})
        if snapshot_dir is not None and (step + 1) % snapshot_every == 0:
            save_toy(ema, cfg, Path(snapshot_dir) / f"step_{step + 1}", {"step": step + 1, "loss": run})
    seconds = time.perf_counter() - t0
    meta = {
        "train_seconds": round(seconds, 1),
        "embed_seconds": round(t_embed, 1),
        "final_loss": run,
        "command": "python scripts/train_toy.py" + ("" if cfg.encoder == "minilm" else f" --world {cfg.encoder}"),
        "history": history,
    }
    if out is not None:
        save_toy(ema, cfg, Path(out), meta)
    return ToyPipeline(ema, enc, cfg), history
