"""Tiny models built from configs with random weights, saved and loaded back like the real ones."""
from __future__ import annotations

from pathlib import Path


def tiny_clip_tokenizer(path: Path):
    """A CLIP BPE tokenizer with a small vocabulary, written from scratch (no hub)."""
    import json

    from transformers import CLIPTokenizer

    words = ["a", "photo", "of", "naked", "woman", "man", "cat", "on", "beach", "blood", "the", "red", "dog", "in", "street"]
    chars = list("abcdefghijklmnopqrstuvwxyz")
    vocab = {}
    for c in chars:
        vocab.setdefault(c, len(vocab))
    for c in chars:
        vocab.setdefault(c + "</w>", len(vocab))
    for w in words:
        vocab.setdefault(w + "</w>", len(vocab))
    merges = ["#version: 0.2"]
    # merges that build each word from characters, left to right
    for w in words:
        cur = list(w[:-1]) + [w[-1] + "</w>"]
        while len(cur) > 1:
            a, b = cur[0], cur[1]
            merges.append(f"{a} {b}")
            vocab.setdefault(a + b, len(vocab))
            cur = [a + b] + cur[2:]
    vocab.setdefault("<|startoftext|>", len(vocab))
    vocab.setdefault("<|endoftext|>", len(vocab))
    path.mkdir(parents=True, exist_ok=True)
    (path / "vocab.json").write_text(json.dumps(vocab))
    (path / "merges.txt").write_text("\n".join(dict.fromkeys(merges)) + "\n")
    tok = CLIPTokenizer(str(path / "vocab.json"), str(path / "merges.txt"), pad_token="<|endoftext|>", model_max_length=77)
    tok.save_pretrained(str(path))
    return tok


def tiny_clip_text_model(vocab_size: int, bos: int, eos: int, seed: int = 0, hidden: int = 32, layers: int = 4):
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    cfg = CLIPTextConfig(
        vocab_size=vocab_size, hidden_size=hidden, intermediate_size=37, num_attention_heads=4,
        num_hidden_layers=layers, max_position_embeddings=77, bos_token_id=bos, eos_token_id=eos, pad_token_id=eos,
        projection_dim=hidden,
    )
    return CLIPTextModel(cfg).eval()


def save_tiny_clip(path: Path) -> Path:
    """A folder laid out like an SD pipeline's: text_encoder/ and tokenizer/."""
    path = Path(path)
    tok = tiny_clip_tokenizer(path / "tokenizer")
    model = tiny_clip_text_model(len(tok), tok.bos_token_id, tok.eos_token_id)
    model.save_pretrained(str(path / "text_encoder"))
    return path
