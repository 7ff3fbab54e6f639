"""The session budget: expected times on a T4 from counted FLOPs and a published T4 rate, the profiles
that fit a session, the rehearsal's stand-ins, and the measured estimate in the progress bars."""

import json

import pytest

from snce_lib.workbook import budget
from snce_lib.workbook.profiles import PROFILES


def test_the_t4_rate_is_what_the_published_unet_figure_implies():
    # diffusers' T4 benchmark: 1.79 it/s at batch 4 -> 0.1397 s an image-step of 1.607 TFLOP
    assert budget.UNET_STEP_T4_SECONDS == pytest.approx(0.1397, abs=1e-4)
    assert budget.T4_RATE == pytest.approx(11.5e12, rel=0.01)
    assert budget.T4_RATE / budget.T4_FP16_PEAK == pytest.approx(0.177, abs=0.002)


@pytest.mark.parametrize("name", [*budget.FLOPS, "unet_step"])
def test_the_flop_figures_are_recounted_on_the_real_shapes(name):
    want = budget.FLOPS.get(name, budget.UNET_STEP_FLOPS)
    assert budget.count_flops(name) == pytest.approx(want, rel=2e-3)


def test_plan_counts_what_each_profile_runs():
    colab, paper = PROFILES["colab"], PROFILES["colab-paper"]
    assert budget.training_prompt_count(colab) == 5999 + 10000 + 4703
    assert budget.training_prompt_count(PROFILES["colab-rehearsal"]) == 300
    assert budget.eval_images(paper) == 826  # 2 x (134 + 79 + 200), the paper-scale evaluation
    steps = {e.step: e for e in budget.plan(paper)}
    assert steps["train"].items == -(-400_000_000 // 4096)
    assert steps["generate"].items == 826
    # 826 images x (50 UNet steps at diffusers' T4 rate + a VAE decode and two encoder passes by FLOPs)
    per_image = 50 / (1.79 * 4) + (2.515e12 + 2 * 13.30e9) / budget.T4_RATE
    assert steps["generate"].seconds == pytest.approx(826 * per_image, rel=1e-3)


def test_the_colab_default_fits_a_session_and_the_paper_scale_is_one_switch_away(monkeypatch):
    from snce_lib import workbook as wb

    colab = budget.total_seconds(PROFILES["colab"])
    paper = budget.total_seconds(PROFILES["colab-paper"])
    assert 90 * 60 <= colab <= 130 * 60, colab / 60  # about two hours on a T4
    assert paper > colab * 1.2
    monkeypatch.setenv("SNCE_PROFILE", "colab-paper")
    p = wb.get_profile()
    assert p.name == "colab-paper" and p.tokens == 400_000_000 and p.steps == 50 and p.eval_prompts == 200


def test_announce_says_what_and_how_long(capsys):
    e = budget.announce(PROFILES["colab"], "generate")
    out = capsys.readouterr().out
    assert f"{e.items} images at 512 px" in out and "on a T4" in out and budget.duration(e.seconds) in out
    with pytest.raises(ValueError, match="unknown step 'nope'; steps: collect, train"):
        budget.announce(PROFILES["colab"], "nope")
    budget.announce(PROFILES["offline"], "train")
    assert "on a T4" not in capsys.readouterr().out  # the offline models are not SD's: no T4 figure


def test_plan_text_names_every_step_and_a_total():
    text = budget.plan_text(PROFILES["colab"])
    for step in ("collect", "train", "atlas", "select", "toy world", "generate", "evaluate"):
        assert f" {step}: " in text
    assert "notebooks 01-04: about" in text and "no GPU measured it" in text


def test_the_cli_offers_every_profile():
    from snce_lib.cli.image_commands import WORKBOOK_PROFILES

    assert set(WORKBOOK_PROFILES) == set(PROFILES)


def test_first_batch_estimate_shows_the_measured_rate_in_the_bar():
    from tqdm.auto import tqdm

    from snce_lib.sae.collect import first_batch_estimate

    bar = tqdm(total=10, disable=True)
    assert first_batch_estimate(bar, 2.0, 4, 10, "img") == "measured 0.5 s/img, ~5 s for 10"
    assert first_batch_estimate(bar, 30.0, 2, 826, "img") == "measured 15 s/img, ~206.5 min for 826"


def test_rehearsal_stand_ins_are_built_once_and_never_in_the_users_caches(monkeypatch, tmp_path):
    from snce_lib.models import hubcache
    from snce_lib.workbook import rehearsal

    calls = []
    monkeypatch.setattr(hubcache, "build_hub_cache", lambda home, size: calls.append((home, size)))
    monkeypatch.setenv("SNCE_CACHE", str(tmp_path / "user-cache"))
    monkeypatch.delenv("SNCE_REHEARSAL_CACHE", raising=False)
    env = rehearsal.prepare(log=lambda line: None)
    folder = tmp_path / "user-cache" / "rehearsal"
    assert calls == [(folder / "hf", "real")]
    assert env["HF_HOME"] == str(folder / "hf") and env["SNCE_CACHE"] == str(folder / "cache")
    assert env["HF_HUB_OFFLINE"] == "1" and (folder / "cache" / "inception-2015-12-05.pt").exists()
    assert json.loads((folder / "rehearsal.json").read_text())["hub_cache"] == "real"
    rehearsal.prepare(log=lambda line: None)
    assert len(calls) == 1  # a finished build is reused
