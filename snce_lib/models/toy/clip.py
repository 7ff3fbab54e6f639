"""The CLIP world's text encoder: a small CLIP trained here, contrastively, on toy renders and captions.

Stable Diffusion conditions on CLIP's text transformer, not on a bidirectional sentence encoder, so
the toy world has a twin whose encoder is built the way SD's is: transformers' `CLIPTextModel`
(causal attention, BOS and EOS, padding with the end token to a fixed length, a final LayerNorm,
quick-GELU) and a `CLIPTokenizer` whose byte-pair merges are learned from the world's captions, so
a word it never saw is split into pieces. Its image tower is a small CNN; the loss is CLIP's
symmetric cross-entropy over a batch, with every image that fits what a caption names counted as
a positive ("a red circle" fits a red circle on any background; with 720 distinct specs a batch of
256 holds many such, and calling them negatives would punish the right answer).

The contrastive training sees every synonym, the held-out attack words included (a real CLIP knows
words that SD's UNet rarely saw); the toy UNet trained afterwards on this frozen encoder sees only
the training words (`snce_lib.models.toy.model.train_toy` with `encoder="clip"`).

The saved folder is a bare text-encoder folder (config.json, model.safetensors, vocab.json,
merges.txt, tokenizer files), so `snce_lib.models.encoders.load_sd(folder)` loads it through the
same code as SD v1.4's text encoder.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from snce_lib.models.toy.world import (
    ATTACK_WORDS,
    BACKGROUNDS,
    COLOUR_WORDS,
    PALETTE,
    POSITIONS,
    SHAPE_WORDS,
    SHAPES,
    SIZES,
    TEMPLATES,
    Spec,
    caption,
    render,
)

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
ATTRIBUTE_VALUES = {"colour": list(PALETTE), "shape": list(SHAPES), "bg": list(BACKGROUNDS), "size": list(SIZES),
                    "pos": list(POSITIONS)}  # fmt: skip


@dataclass
class ClipConfig:
    width: int = 256
    layers: int = 6
    """As MiniLM's six, so both worlds read the SAE at block 4 of 6."""
    heads: int = 4
    max_length: int = 24
    """Padded length of every prompt (SD pads to 77; toy captions and attack phrases fit in 24)."""
    vocab_merges: int = 600
    """Byte-pair merges learned from the captions, on top of CLIP's 512 byte symbols."""
    embed_dim: int = 128
    steps: int = 1000
    batch_size: int = 256
    lr: float = 1e-3
    n_captions: int = 60000
    seed: int = 0


def all_specs() -> list[Spec]:
    return [Spec(c, s, b, z, p) for c, s, b, z, p in itertools.product(PALETTE, SHAPES, BACKGROUNDS, SIZES, POSITIONS)]


ATTRIBUTES = ("colour", "shape", "bg", "size", "pos")


def clip_caption(spec: Spec, rng: random.Random) -> tuple[str, tuple[bool, ...]]:
    """A caption with any word the world has for the spec's colour and shape, attack words included
    (phrased as `evaluation.toy.prompt_suite` phrases attack prompts), and which of the spec's
    attributes it names. One caption in ten leaves the colour out and one in ten calls the shape
    "object", as the concept pairs' deconcept prompts do: a real CLIP has seen underspecified text."""
    cw = rng.choice(COLOUR_WORDS[spec.colour] + ATTACK_WORDS.get(spec.colour, []))
    sw = rng.choice(SHAPE_WORDS[spec.shape] + ATTACK_WORDS.get(spec.shape, []))
    if cw.startswith("the "):
        return f"a {sw} that is {cw}", (True, True, False, False, False)
    tpl = rng.choice(TEMPLATES)
    has_colour, has_shape = rng.random() >= 0.1, rng.random() >= 0.1
    text = caption(spec, rng, cw if has_colour else "", sw if has_shape else "object", tpl)
    return text, (has_colour, has_shape, "{bg}" in tpl, "{size}" in tpl, "{pos}" in tpl)


def _matches(specs: Sequence[Spec], named: torch.Tensor, sid: torch.Tensor) -> torch.Tensor:
    """[batch, batch] True where image j fits every attribute caption i names."""
    attr = torch.tensor([[ATTRIBUTE_VALUES[a].index(getattr(s, a)) for a in ATTRIBUTES] for s in specs])
    a = attr[sid]
    eq = a[:, None, :] == a[None, :, :]
    return (eq | ~named[:, None, :]).all(-1)


# -- tokenizer ---------------------------------------------------------------------------------------


def bytes_to_unicode() -> dict[int, str]:
    """CLIP's (and GPT-2's) byte-to-printable-character table, so merges and vocab are plain text."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def train_tokenizer(texts: Sequence[str], merges: int) -> tuple[dict[str, int], list[str]]:
    """CLIP-format byte-pair vocabulary (vocab, merge lines) learned from `texts`: words end in
    "</w>", the 512 single symbols (with and without "</w>") come first, then the merges in order,
    then BOS and EOS, as in CLIP's own vocab.json."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    byte_chars = list(bytes_to_unicode().values())
    tok = Tokenizer(models.BPE(end_of_word_suffix="</w>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()  # letters runs and punctuation runs, as CLIP's regex
    trainer = trainers.BpeTrainer(
        vocab_size=10**6,  # bounded by limit_alphabet and the merge count below
        initial_alphabet=byte_chars,
        end_of_word_suffix="</w>",
        show_progress=False,
        min_frequency=2,
    )
    tok.train_from_iterator(texts, trainer)
    model = json.loads(tok.to_str())["model"]
    lines = [" ".join(m) if isinstance(m, list) else m for m in model["merges"]][:merges]
    vocab: dict[str, int] = {}
    for ch in byte_chars:
        vocab[ch] = len(vocab)
    for ch in byte_chars:
        vocab[ch + "</w>"] = len(vocab)
    for line in lines:
        a, b = line.split(" ")
        vocab.setdefault(a + b, len(vocab))
    vocab[BOS] = len(vocab)
    vocab[EOS] = len(vocab)
    return vocab, lines


def save_tokenizer(folder: Path, vocab: dict[str, int], merges: list[str], max_length: int) -> None:
    from snce_lib.io import atomic_write_json, atomic_write_text

    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(folder / "vocab.json", vocab)
    # CLIPTokenizer skips the first line of merges.txt (a version header), as in CLIP's files
    atomic_write_text(folder / "merges.txt", "#version: 0.2\n" + "\n".join(merges) + "\n")
    atomic_write_json(
        folder / "tokenizer_config.json",
        {
            "tokenizer_class": "CLIPTokenizer",
            "model_max_length": max_length,
            "bos_token": BOS,
            "eos_token": EOS,
            "unk_token": EOS,
            "pad_token": EOS,  # SD v1.4's tokenizer pads with the end token
            "do_lower_case": True,
        },
    )
    atomic_write_json(
        folder / "special_tokens_map.json",
        {"bos_token": BOS, "eos_token": EOS, "unk_token": EOS, "pad_token": EOS},
    )


# -- model -------------------------------------------------------------------------------------------


def text_config(cfg: ClipConfig, vocab: dict[str, int]):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=len(vocab),
        hidden_size=cfg.width,
        intermediate_size=4 * cfg.width,
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads,
        max_position_embeddings=cfg.max_length,
        hidden_act="quick_gelu",
        projection_dim=cfg.embed_dim,
        bos_token_id=vocab[BOS],
        eos_token_id=vocab[EOS],
        pad_token_id=vocab[EOS],
    )


class ImageTower(nn.Module):
    """16x16 RGB -> embedding; flattening the last map (no global pool) keeps position readable."""

    def __init__(self, dim: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1),
            nn.GELU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1),
            nn.GELU(),
            nn.Conv2d(64, 128, 3, stride=2, padding=1),
            nn.GELU(),
            nn.Flatten(),
            nn.Linear(128 * 4 * 4, dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _spec_index(specs: Sequence[Spec]) -> dict[Spec, int]:
    return {s: i for i, s in enumerate(specs)}


def _images(specs: Sequence[Spec]) -> torch.Tensor:
    return torch.from_numpy(np.stack([render(s) for s in specs])).permute(0, 3, 1, 2).float() / 127.5 - 1


def train_clip(cfg: ClipConfig | None = None, out: Path | None = None, progress: bool = True) -> dict:
    """Train tokenizer, text transformer and image tower; write the text encoder folder to `out`.
    Returns the metadata written beside it (config, seconds, loss history, retrieval accuracy)."""
    from transformers import CLIPTextModel, CLIPTokenizer

    cfg = cfg or ClipConfig()
    rng = random.Random(cfg.seed)
    torch.manual_seed(cfg.seed)
    specs = all_specs()
    index = _spec_index(specs)
    cap_specs = [rng.choice(specs) for _ in range(cfg.n_captions)]
    caps, named = zip(*(clip_caption(s, rng) for s in cap_specs))
    caps, named = list(caps), torch.tensor(named)
    t0 = time.perf_counter()
    vocab, merges = train_tokenizer(caps, cfg.vocab_merges)
    with tempfile.TemporaryDirectory() as scratch:  # the tokenizer loads from files: `out`, else a scratch folder
        folder = Path(out) if out is not None else Path(scratch)
        save_tokenizer(folder, vocab, merges, cfg.max_length)
        tok = CLIPTokenizer.from_pretrained(str(folder))
    ids = tok(caps, padding="max_length", max_length=cfg.max_length, truncation=True, return_tensors="pt")["input_ids"]
    too_long = sum(len(x) > cfg.max_length for x in tok(caps)["input_ids"])
    if too_long:
        raise ValueError(f"{too_long} training captions exceed max_length {cfg.max_length}; raise it")
    t_tok = time.perf_counter() - t0

    text = CLIPTextModel(text_config(cfg, vocab))
    text_proj = nn.Linear(cfg.width, cfg.embed_dim, bias=False)
    image = ImageTower(cfg.embed_dim)
    logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
    params = [*text.parameters(), *text_proj.parameters(), *image.parameters(), logit_scale]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.01)
    imgs = _images(specs)
    spec_ids = torch.tensor([index[s] for s in cap_specs])
    warm = max(1, cfg.steps // 20)
    history, run, first = [], 0.0, None
    t0 = time.perf_counter()
    text.train()
    for step in tqdm(range(cfg.steps), desc="train toy CLIP", disable=not progress):
        for g in opt.param_groups:
            g["lr"] = cfg.lr * min(1.0, (step + 1) / warm) * 0.5 * (1 + math.cos(math.pi * step / cfg.steps))
        b = torch.randint(0, len(caps), (cfg.batch_size,))
        sid = spec_ids[b]
        x = imgs[sid]
        x = x + 0.05 * torch.randn_like(x)  # generated images are noisy; the image tower should not mind
        t_emb = nn.functional.normalize(text_proj(text(input_ids=ids[b]).pooler_output), dim=-1)
        i_emb = nn.functional.normalize(image(x), dim=-1)
        logits = logit_scale.exp().clamp(max=100) * t_emb @ i_emb.T
        fits = _matches(specs, named[b], sid).float()  # every image that fits the caption is a positive
        t_txt = fits / fits.sum(1, keepdim=True)
        t_img = fits.T / fits.T.sum(1, keepdim=True)
        loss = 0.5 * (-(t_txt * logits.log_softmax(1)).sum(1).mean() - (t_img * logits.T.log_softmax(1)).sum(1).mean())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        lv = float(loss.detach())
        first = lv if first is None else first
        run = 0.98 * run + 0.02 * lv if step else lv
        if (step + 1) % 100 == 0:
            history.append({"step": step + 1, "loss": run, "seconds": round(time.perf_counter() - t0, 1)})
    seconds = time.perf_counter() - t0
    text.eval()
    acc = retrieval_accuracy(text, text_proj, image, tok, cfg, seed=cfg.seed + 1000)
    meta = {
        "kind": "snce-toy-clip",
        "config": asdict(cfg),
        "stored_dtype": "float16",
        "vocab_size": len(vocab),
        "tokenizer_seconds": round(t_tok, 1),
        "train_seconds": round(seconds, 1),
        "initial_loss": first,
        "final_loss": run,
        "retrieval": acc,
        "command": f"python scripts/train_toy.py --world clip --seed {cfg.seed}",
        "history": history,
    }
    if out is not None:
        from snce_lib.io import atomic_write_json

        # stored in fp16, as the toy UNet is (half the size in the repository); the UNet then trains
        # on these rounded weights, read back in fp32, exactly as every later run reads them
        text.to(torch.float16).save_pretrained(str(out), safe_serialization=True)
        text.to(torch.float32)
        atomic_write_json(Path(out) / "clip.json", meta)
    return meta


@torch.no_grad()
def retrieval_accuracy(text, text_proj, image, tok, cfg: ClipConfig, n: int = 1000, seed: int = 1) -> dict:
    """Zero-shot: each fresh caption picks the nearest of the 720 renders; the share whose colour and
    whose shape match the caption's, for training-word captions and for attack-word captions."""
    rng = random.Random(seed)
    specs = all_specs()
    i_emb = nn.functional.normalize(image(_images(specs)), dim=-1)

    def score(caps, truth):
        ids = tok(caps, padding="max_length", max_length=cfg.max_length, truncation=True, return_tensors="pt")
        t_emb = nn.functional.normalize(text_proj(text(input_ids=ids["input_ids"]).pooler_output), dim=-1)
        pick = [specs[j] for j in (t_emb @ i_emb.T).argmax(1).tolist()]
        return {
            "colour": float(np.mean([p.colour == s.colour for p, s in zip(pick, truth)])),
            "shape": float(np.mean([p.shape == s.shape for p, s in zip(pick, truth)])),
            "n": len(caps),
        }

    truth = [rng.choice(specs) for _ in range(n)]
    plain = [caption(s, rng) for s in truth]
    att_truth = [rng.choice([s for s in specs if s.colour == "red" or s.shape == "triangle"]) for _ in range(n)]
    att = []
    for s in att_truth:
        if s.colour == "red" and (s.shape != "triangle" or rng.random() < 0.5):
            w = rng.choice(ATTACK_WORDS["red"])
            att.append(f"a {s.shape} that is {w}" if w.startswith("the ") else caption(s, rng, w, None))
        else:
            att.append(caption(s, rng, None, rng.choice(ATTACK_WORDS["triangle"])))
    return {"training_words": score(plain, truth), "attack_words": score(att, att_truth)}
