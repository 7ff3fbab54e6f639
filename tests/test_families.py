"""Every pipeline family end to end through its real diffusers class, offline: the hub-shaped stand-ins of
SD 2.1-base, SD-Turbo, SDXL base and FLUX.1-schnell are loaded by their real ids, an activation store is
collected from the family's default site, a tiny SAE trained, a neuron selected on concept pairs, and one
image generated with the neuron erased (mode B): changed where the neuron fires, bit-identical where it
is silent. Our conditioning must equal the pipeline's own."""

import numpy as np
import pytest
import torch

from snce_lib.concepts.erase import Eraser
from snce_lib.concepts.pairs import ConceptPairs
from snce_lib.concepts.selection import select_with_fallback
from snce_lib.models.encoders import EncoderError, from_pipeline, load_encoder
from snce_lib.models.families import FAMILIES, conditioning, family_of, reaches
from snce_lib.sae.collect import collect
from snce_lib.sae.train import TrainConfig, train_sae
from tests.helpers import PROMPTS

# the stand-ins' expected family, default encoder and block, and the pipeline class
CASES = {
    "sd2": ("stabilityai/stable-diffusion-2-1-base", "sd2", 0, 18, "StableDiffusionPipeline"),
    "sd-turbo": ("stabilityai/sd-turbo", "sd2", 0, 18, "StableDiffusionPipeline"),
    "sdxl": ("stabilityai/stable-diffusion-xl-base-1.0", "sdxl", 1, 28, "StableDiffusionXLPipeline"),
    "flux": ("black-forest-labs/FLUX.1-schnell", "flux", 1, 22, "FluxPipeline"),
}
NAKED = [p for p in PROMPTS if "naked" in p or "nude" in p]


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    from snce_lib.models.standins import build_standins

    home = tmp_path_factory.mktemp("hf")
    build_standins(home)
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HOME", str(home))
    mp.setenv("HF_HUB_OFFLINE", "1")
    mp.setenv("HF_HUB_CACHE", str(home / "hub"))
    import huggingface_hub.constants as c

    mp.setattr(c, "HF_HUB_CACHE", str(home / "hub"))
    mp.setattr(c, "HF_HUB_OFFLINE", True)
    yield home
    mp.undo()


def image(pipe, cond, seed=3):
    g = torch.Generator().manual_seed(seed)
    kw = {"guidance_scale": 0.0} if type(pipe).__name__ == "FluxPipeline" else {}
    return pipe(num_inference_steps=2, generator=[g], height=64, width=64, output_type="np", **cond, **kw).images[0]


@pytest.mark.parametrize("name", list(CASES))
def test_a_family_goes_from_collection_to_an_erased_image(hub, tmp_path, name, one_thread):
    from snce_lib.models.pipelines import load_pipeline

    repo, fam, index, block, cls = CASES[name]
    pipe = load_pipeline(repo, device="cpu")
    assert type(pipe).__name__ == cls and family_of(pipe).name == fam
    # the SAE's encoder loaded alone from the hub id is the pipeline's encoder at the family's site
    enc = load_encoder(repo, device="cpu")
    assert (enc.encoder_index, enc.resolve_layer(None)[1], enc.component) == (
        index,
        block,
        f"text_encoder{'_2' if index else ''}",
    )
    assert enc.start == (0 if fam == "flux" else 1)  # T5 has no BOS: its first word is edited too
    store = collect(enc, PROMPTS * 6, tmp_path / "store", keep_padding=4, progress=False)
    assert store.info.encoder_index == index
    sae = train_sae(store.training_source()[0], TrainConfig(n_latents=64, k=4, lr=3e-3, batch_size=128, tokens=60 * 128),
                    encoder_id=repo, layer=store.info.layer, layer_index=store.info.layer_index,
                    encoder_index=store.info.encoder_index, progress=False).sae.requires_grad_(False)  # fmt: skip
    assert (sae.cfg.encoder_index, sae.cfg.layer_index) == (index, block)
    concept = ConceptPairs("nudity", NAKED, [p.replace("naked", "dressed").replace("nude", "dressed") for p in NAKED])
    sel, _ = select_with_fallback(from_pipeline(pipe), sae, concept, top_k=1, shares=(0.0, 0.01, 0.1, 0.3, 1.0))
    eraser = Eraser(sae, list(sel.neurons), lam=4.0, mode="B")
    codes = {p: eraser.codes(enc.run_to_block(enc.tokenize([p]), None))[0, enc.start :].abs().sum().item()
             for p in PROMPTS}  # fmt: skip
    firing = [p for p in PROMPTS if codes[p] > 0]
    silent = [p for p in PROMPTS if codes[p] == 0]
    if not firing or not silent:
        pytest.skip(f"neuron {sel.neurons} fires on all or none of the prompts of this tiny SAE")
    # our conditioning is the pipeline's own
    own = {"prompt": firing[0]} | ({"max_sequence_length": 256} if fam == "flux" else {})
    plain = image(pipe, conditioning(pipe, [firing[0]]))
    assert np.array_equal(plain, image(pipe, own))
    erased = image(pipe, conditioning(pipe, [firing[0]], eraser))
    assert not np.array_equal(erased, plain)  # the neuron fires: the image changes
    # silent: every tensor the pipeline reads is bit-identical, and so is the image
    a, b = conditioning(pipe, [silent[0]]), conditioning(pipe, [silent[0]], eraser)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert np.array_equal(image(pipe, a), image(pipe, b))


def test_an_sdxl_edit_on_the_second_encoder_reaches_its_sequence_half_and_the_pooled_vector(hub, one_thread):
    from snce_lib.models.pipelines import load_pipeline

    pipe = load_pipeline(CASES["sdxl"][0], device="cpu")
    enc = from_pipeline(pipe)
    from snce_lib.concepts.methods import BlockMap

    push = BlockMap("push", lambda h: h + 1.0, layer=28, encoder_index=1)
    a, b = conditioning(pipe, ["a photo of a cat"]), conditioning(pipe, ["a photo of a cat"], push)
    w1 = pipe.text_encoder.config.hidden_size
    assert torch.equal(a["prompt_embeds"][..., :w1], b["prompt_embeds"][..., :w1])  # CLIP-L's half untouched
    assert not torch.equal(a["prompt_embeds"][..., w1:], b["prompt_embeds"][..., w1:])
    assert not torch.equal(a["pooled_prompt_embeds"], b["pooled_prompt_embeds"])
    assert torch.equal(a["negative_prompt_embeds"], torch.zeros_like(a["prompt_embeds"]))  # SDXL zeroes the empty one
    # the same edit on the first encoder reaches its half only; after the read block it reaches nothing
    first = conditioning(pipe, ["a photo of a cat"], BlockMap("push", lambda h: h + 1.0, layer=10, encoder_index=0))
    assert not torch.equal(a["prompt_embeds"][..., :w1], first["prompt_embeds"][..., :w1])
    assert torch.equal(a["pooled_prompt_embeds"], first["pooled_prompt_embeds"])
    assert reaches(enc, 31) == ["pooled"] and reaches(from_pipeline(pipe, 0), 11) == []
    from snce_lib.models.families import site

    said = site(enc)  # what notebook 01 prints
    assert "`text_encoder_2`" in said and "block 28" in said and "reaches that sequence and the pooled vector" in said
    assert (
        "reaches that sequence" in site(from_pipeline(pipe, 0), 10)
        and "pooled vector" not in site(from_pipeline(pipe, 0), 10).split("reaches")[1]
    )
    with pytest.raises(EncoderError, match="after the hidden state"):
        conditioning(pipe, ["a cat"], BlockMap("late", lambda h: h, layer=11, encoder_index=0))
    with pytest.raises(EncoderError, match="encoder index 2 does not exist"):
        conditioning(pipe, ["a cat"], BlockMap("x", lambda h: h, layer=1, encoder_index=2))


def test_flux_takes_no_negative_prompt_and_says_so(hub, one_thread):
    from snce_lib.concepts.methods import NegativePrompt
    from snce_lib.models.pipelines import load_pipeline

    pipe = load_pipeline(CASES["flux"][0], device="cpu")
    cond = conditioning(pipe, ["a nude woman"])
    assert set(cond) == {"prompt_embeds", "pooled_prompt_embeds"} and cond["prompt_embeds"].shape[1] == 256
    with pytest.raises(EncoderError, match="takes no negative prompt"):
        conditioning(pipe, ["a nude woman"], NegativePrompt("nude"))


def test_every_family_row_names_a_site_that_exists():
    for fam in FAMILIES.values():
        assert 0 <= fam.default_encoder < len(fam.slots)
        assert fam.slots[fam.default_encoder].default_block is not None


def test_the_look_model_draws_only_when_it_reads_the_sae_features(hub, one_thread):
    from snce_lib.models.look import choose, same_features
    from snce_lib.models.pipelines import load_pipeline
    from snce_lib.sae.model import SAEConfig, TopKSAE

    main = load_pipeline(CASES["sd2"][0], device="cpu")
    sae = TopKSAE(SAEConfig(32, 64, 4, CASES["sd2"][0], "encoder.layers.18", 18, 0))
    look = choose(main, sae, "stabilityai/sd-turbo", main_steps=50)
    # SD-Turbo's stand-in keeps SD 2.1's text encoder, as the real one does: it draws, in one step
    assert look.few_step and look.steps == 1 and look.guidance == 0.0 and look.pipe is not main
    assert type(look.pipe.scheduler).__name__ == "EulerDiscreteScheduler"
    # another family's encoder: told from the config, the main model draws and says why
    xl = load_pipeline(CASES["sdxl"][0], device="cpu")
    xl_sae = TopKSAE(SAEConfig(32, 64, 4, CASES["sdxl"][0], "encoder.layers.28", 28, 1))
    back = choose(xl, xl_sae, "stabilityai/sd-turbo", main_steps=50)
    assert (
        back.pipe is xl
        and back.steps == 50
        and "has no such encoder" in back.reason
        and "text_encoder_2" in back.reason
    )
    sd14_like = choose(main, TopKSAE(SAEConfig(32, 64, 4, "x", "encoder.layers.9", 9, 0)), CASES["sdxl"][0])
    assert sd14_like.pipe is main and "is another encoder" in sd14_like.reason  # 12 blocks against 23
    assert "main model draws" in choose(main, sae, "main").reason
    # the same config with other weights (another seed's stand-in, from a folder): told weight for weight
    from snce_lib.models.standins import SD21_BASE, build_sd2

    other = build_sd2(hub / "other", SD21_BASE, seed=1)
    reseeded = choose(main, sae, str(other))
    assert reseeded.pipe is main and "other weights up to block 18" in reseeded.reason
    assert "could not load" in choose(main, sae, "nobody/no-such-model").reason
    # same shapes, other weights up to the SAE's block: not the same features
    enc_a, enc_b = from_pipeline(main), from_pipeline(look.pipe)
    assert same_features(enc_a, enc_b, 18)
    with torch.no_grad():
        enc_b.block(3).mlp.fc1.weight.add_(1e-3)
    assert not same_features(enc_a, enc_b, 18) and same_features(enc_a, enc_b, 2)


def test_t5_positions_group_sentencepiece_words_and_its_vocabulary_reads_without_a_start_token(hub, one_thread):
    """FLUX's T5 marks a word's start ("▁photo"), not its end, and puts no start token before a prompt: the
    atlas's word grouping and its vocabulary pass read it so."""
    from snce_lib.concepts.codes import prompt_codes
    from snce_lib.concepts.positions import CONTENT, FUNCTION, encoder_words
    from snce_lib.concepts.vocabulary import vocabulary_codes
    from snce_lib.sae.model import SAEConfig, TopKSAE

    enc = load_encoder(CASES["flux"][0], device="cpu")
    sae = TopKSAE(SAEConfig(32, 64, 4, CASES["flux"][0], "encoder.block.22", 22, 1))
    codes = prompt_codes(enc, sae, ["a photo of a zebra"], progress=False)
    words = encoder_words(enc, codes)
    n = int(codes.real[0].sum())  # the words' pieces and </s>, from position 0 (no BOS)
    got = [words.word_of(0, j) for j in range(n)]
    pieces = enc.token_strings(codes.token_ids[0][:n].tolist())
    assert pieces[:4] == ["▁a", "▁photo", "▁of", "▁a"] and "".join(pieces[4:-1]) == "▁zebra"  # zebra: single letters
    assert got == ["a", "photo", "of", "a"] + ["zebra"] * (n - 5) + ["[END]"]
    assert words.kind[0, 1] == CONTENT and words.kind[0, 0] == FUNCTION and words.kind[0, 4] == CONTENT
    vocab = vocabulary_codes(enc, sae, only=["photo", "painting", "zebra"], progress=False)
    assert sorted(vocab.words) == ["painting", "photo"]  # "zebra" is no whole token of this vocabulary
    # each word read alone at position 0 (no start token before it), as in a prompt
    toks = enc.tokenize(["photo"])
    assert torch.allclose(vocab.features[vocab.words.index("photo")].float(),
                          enc.run_to_block(toks, 22)[0, 0].half().float())  # fmt: skip


def test_the_cli_takes_sdxl_by_its_hub_id_and_either_encoder(hub, tmp_path, capsys, one_thread):
    """collect (the first encoder, named with --encoder-index), train, select, generate with the eraser:
    the SAE's config carries the encoder index, and select and generate find that encoder again."""
    import json

    from snce_lib.cli import main

    repo = CASES["sdxl"][0]
    (tmp_path / "p.txt").write_text("\n".join(PROMPTS * 6))
    (tmp_path / "pairs.csv").write_text("concept_prompt,deconcept_prompt\n" + "".join(
        f"a naked {w},a {w}\n" for w in ["woman", "man", "cat", "dog", "tree", "house"]))  # fmt: skip
    assert main(f"collect --encoder {repo} --encoder-index 0 --layer 10 --prompts {tmp_path / 'p.txt'} "
                f"--out {tmp_path / 'st'}".split()) == 0  # fmt: skip
    assert main(f"train --activations {tmp_path / 'st'} --out {tmp_path / 'sae'} --latents 64 --k 4 --batch-size 128 "
                "--tokens 6400 --lr 0.003".split()) == 0  # fmt: skip
    cfg = json.loads((tmp_path / "sae" / "cfg.json").read_text())
    assert (cfg["encoder_id"], cfg["encoder_index"], cfg["layer_index"]) == (repo, 0, 10)
    assert main(f"select --sae {tmp_path / 'sae'} --concept {tmp_path / 'pairs.csv'} --top-k 1 --fallback "
                f"--out {tmp_path / 'n.json'}".split()) == 0  # fmt: skip
    (tmp_path / "set.csv").write_text("prompt,evaluation_seed,case_number\na naked woman,1,0\na red car,2,1\n")
    capsys.readouterr()
    code = main(f"generate --model {repo} --prompts {tmp_path / 'set.csv'} --sae {tmp_path / 'sae'} --neurons "
                f"{tmp_path / 'n.json'} --steps 2 --resolution 64 --device cpu --out {tmp_path / 'img'}".split())  # fmt: skip
    assert code == 0, capsys.readouterr().err
    rows = [json.loads(line) for line in (tmp_path / "img" / "manifest.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all((tmp_path / "img" / r["file"]).exists() for r in rows)


def test_the_default_look_model_follows_the_family_on_a_gpu_and_is_the_main_model_on_a_cpu(monkeypatch):
    from snce_lib.models import look

    monkeypatch.delenv("SNCE_LOOK_MODEL", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert look.default_spec("sdxl") == "main"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert [look.default_spec(f) for f in ("sd1", "sd2", "sdxl", "flux")] == [
        "stabilityai/sd-turbo", "stabilityai/sd-turbo", "stabilityai/sdxl-turbo", "black-forest-labs/FLUX.1-schnell"]  # fmt: skip
    monkeypatch.setenv("SNCE_LOOK_MODEL", "main")
    assert look.default_spec("sdxl") == "main"
