"""The shareable atlas: its data, and the page itself in a real headless browser (Chromium via
selenium; skipped where Chromium, chromedriver or selenium is missing)."""

import os
import shutil

import numpy as np
import pytest
import torch

from snce_lib.atlas.clusters import MapClusters
from snce_lib.atlas.html import atlas_data, write_atlas
from snce_lib.atlas.labels import label_features
from tests.test_atlas_labels import planted_atlas


def planted_page():
    atlas = planted_atlas()
    labels = label_features(atlas)
    xy = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    layout = MapClusters(
        "planted", xy, np.array([0, 1, 2, -1]), 1.0, {0: "a / the", 1: "red / crimson", 2: "cat / kitten"}
    )
    import torch

    return atlas_data(atlas, labels, layout, torch.eye(4, 8), np.array([0.0, 1.0, 0.0, 0.0]), title="planted")


def test_page_data_holds_cards_search_and_names():
    d = planted_page()
    f1, f2 = d["features"][1], d["features"][2]
    assert {"red", "crimson"} <= set(t for t, _ in f1["top"]) and f1["ex"] and f1["dens"]["firings"]
    words = [d["prompts"][p][0][at] for p, acts, _, at in f2["ex"]]
    assert set(words) <= {"cat", "kitten"}  # the peak token of each example is a cat word
    assert all(max(acts, key=lambda x: x[1])[0] == at for _, acts, _, at in f2["ex"])
    assert d["words"]["crimson"][0] == 1 and d["words"]["kitten"][0] == 2
    assert d["features"][3]["status"] == "dead" and d["features"][3]["ex"] == []
    assert d["clusters"]["1"] == "red / crimson"


def graded_atlas():
    """40 prompts "w0 w1 ... [SEP] pad pad pad": latent 0 fires on the first word at 1 + prompt/10
    (peaks 1.0-4.9, one a prompt) and weakly (0.05) on the padding; latent 1 on every word at 0.5
    (so it co-fires with 0); latent 2 on the end token and padding at 2.0."""
    from snce_lib.atlas.map import Atlas
    from snce_lib.concepts.codes import PromptCodes, firing_frequency

    n, width = 40, 8
    tok = torch.zeros(n, width, dtype=torch.long)
    real = torch.zeros(n, width, dtype=torch.bool)
    dense = torch.zeros(n, width, 3)
    for p in range(n):
        tok[p, :4] = torch.tensor([2 + p % 5, 3, 4, 1])  # three words, then [SEP]
        real[p, :4] = True
        dense[p, 0, 0] = 1 + p / 10
        dense[p, 4:, 0] = 0.05
        dense[p, :3, 1] = 0.5
        dense[p, 3:, 2] = 2.0
    vocab = ["[PAD]", "[SEP]", "red", "car", "road", "sky", "cat", "dog"]
    codes = PromptCodes.from_dense([f"prompt {p}" for p in range(n)], dense, real, ~real, tok)
    return Atlas(codes, firing_frequency(codes), lambda t: vocab[t], 3, (0, 1))


def test_feature_card_shows_density_quantiles_cofiring_label_and_padding():
    from snce_lib.atlas.cards import feature_card
    from snce_lib.atlas.profile import feature_profile

    atlas = graded_atlas()
    labels = label_features(atlas)
    prof = feature_profile(atlas, 0, labels, n_top=3, per_band=2)
    peaks = [e["peak"] for e in prof["top"]]
    assert peaks == [4.9, 4.8, 4.7] and prof["prompts"] == 40
    bands = {q["band"]: q for q in prof["quantiles"]}
    assert list(bands) == ["75-100%", "50-75%", "25-50%", "0-25%"]
    low = [e["peak"] for e in bands["0-25%"]["examples"]]
    assert low and max(low) <= 1.9 + 1e-6 and bands["0-25%"]["lo"] == 1.0  # the weakest tenth of its prompts
    assert all(e["peak"] < 4.7 for q in prof["quantiles"] for e in q["examples"])  # the top ones are not repeated
    # the density: 40 word peaks and 40 x 4 padding firings, each where it fell
    d = prof["density"]
    assert sum(d["counts"]["content"]) == 40 and sum(d["counts"]["end_pad"]) == 160 and d["firings"] == 200
    assert prof["cofire"][0][0] == 1 and prof["cofire"][0][2] == 1.0  # latent 1 fires wherever 0 does on words
    assert prof["label"]["held_out"] == 20 and prof["label"]["score"] is not None
    card = feature_card(atlas, 0, n=3, labels=labels, draws="<img id='strip'>")["html"]
    for part in (
        "Activation density",
        "positions (log)",
        "Top activations",
        "Quantile 0-25%",
        "Co-fires with",
        "held-out prompts",
        "Vocabulary alone",
        "<div class='snce-draws'><img id='strip'></div>",
    ):
        assert part in card, part
    assert '<svg class="snce-density"' in card and ">100</text>" in card  # a log axis: 1, 10, 100
    # the end token and padding are shown and shaded like any token
    pad2 = feature_card(atlas, 2, n=1)["html"]
    assert pad2.count("snce-pad") >= 4 and "rgba(255,80,0,1.00)" in pad2.split("snce-pad", 1)[1][:200]
    assert ">[SEP]</span>" in pad2
    assert "snce-draws" not in feature_card(atlas, 2, n=1)["html"]  # no strip unless given


def test_page_sorts_examples_exactly_at_3000_latents():
    """Latent 2999 peaks at 50.00, 50.01, ..., 50.07 in eight prompts and latent 0 at 100: a float32
    key feature x 4 x (max + 1) - value rounds those peaks together; the page lists them in order."""
    from snce_lib.atlas.map import Atlas
    from snce_lib.concepts.codes import PromptCodes, firing_frequency

    m, n = 3000, 8
    tok = torch.full((n, 3), 2, dtype=torch.long)
    real = torch.ones(n, 3, dtype=torch.bool)
    dense = torch.zeros(n, 3, m)
    dense[0, 0, 0] = 100.0
    for p in range(n):
        dense[p, 1, m - 1] = 50.0 + 0.01 * p
    codes = PromptCodes.from_dense([f"p{p}" for p in range(n)], dense, real, ~real, tok)
    atlas = Atlas(codes, firing_frequency(codes), lambda t: ["[PAD]", "[SEP]", "word"][t], m)
    labels = label_features(atlas)
    layout = MapClusters("x", np.zeros((m, 2)), np.full(m, -1), 0.0, {})
    d = atlas_data(atlas, labels, layout, torch.eye(m, 4), n_examples=8, per_band=0)
    got = [best for _, _, best, _ in d["features"][m - 1]["ex"]]
    assert got == sorted(got, reverse=True) and got[0] == 50.07 and len(got) == 8


def chrome():
    webdriver = pytest.importorskip("selenium.webdriver")
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("Chromium and chromedriver are not installed (Debian: apt-get install chromium chromium-driver)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,900"):
        opts.add_argument(a)
    return webdriver.Chrome(service=webdriver.ChromeService(shutil.which("chromedriver")), options=opts)


def test_the_page_searches_and_opens_cards_in_chromium(tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    page = write_atlas(planted_page(), tmp_path / "atlas.html")
    driver = chrome()
    try:
        driver.get(page.resolve().as_uri())
        assert "planted" in driver.title
        assert "red / crimson" in driver.find_element(By.ID, "map").text  # cluster names printed on the map
        box = driver.find_element(By.ID, "search")
        box.send_keys("kitten", Keys.ENTER)
        assert "fire on 'kitten'" in driver.find_element(By.ID, "status").text
        assert "feature 2" in driver.find_element(By.ID, "card").text
        assert driver.find_element(By.ID, "f2").get_attribute("r") == "7"  # the hit is lit up on the map
        driver.find_element(By.ID, "f1").click()
        card = driver.find_element(By.ID, "card").text
        assert "feature 1" in card and "crimson" in card
        # the card's views: density (log axis), top and quantile examples, co-firing, vocabulary, label score
        assert driver.find_elements(By.CSS_SELECTOR, "#density svg rect")
        assert "Quantile 0-25%" in driver.find_element(By.ID, "bands").text
        assert driver.find_elements(By.CSS_SELECTOR, "#cofire a")
        assert "Vocabulary alone" in driver.find_element(By.ID, "vocab").text
        assert "held-out prompts" in driver.find_element(By.ID, "label").text
        driver.find_element(By.ID, "f0").click()  # fires on every padding position: drawn and shaded
        pads = driver.find_elements(By.CSS_SELECTOR, "#top .tok.pad")
        assert pads and all("255, 80, 0" in p.get_attribute("style") for p in pads)
        assert driver.find_element(By.ID, "draws").text == ""  # the slot for "what it draws", empty here
        box.clear()
        box.send_keys("zzqx", Keys.ENTER)
        assert "no shown feature fires" in driver.find_element(By.ID, "status").text
        assert "feature 1" not in driver.find_element(By.ID, "card").text  # no stale card
        shots = os.environ.get("SNCE_ARTIFACTS")
        if shots:
            os.makedirs(shots, exist_ok=True)
            driver.find_element(By.ID, "f1").click()
            driver.save_screenshot(os.path.join(shots, "atlas_page.png"))
    finally:
        driver.quit()


def random_layout_page(seed: int):
    """A page whose map was drawn by a random layout: every feature a cluster with a long name. The
    page scales the layout to the map's box, so some names always sit on its edges."""
    import torch

    atlas = planted_atlas()
    labels = label_features(atlas)
    rng = np.random.default_rng(seed)
    n = len(labels)
    xy = rng.normal(size=(n, 2))
    layout = MapClusters("random", xy, np.arange(n), 0.0, {c: f"cluster {c}: a long name / another" for c in range(n)})
    return atlas_data(atlas, labels, layout, torch.eye(n, 8), title=f"layout {seed}")


@pytest.mark.parametrize("width", [420, 1100])
def test_every_cluster_name_is_inside_the_visible_frame_for_three_layouts(tmp_path, width):
    """The notebook's frame in a narrow pane (420 px) and a wide one: each name's box lies inside the
    map and the frame's viewport, whatever the layout (three seeds)."""
    from selenium.webdriver.common.by import By

    from snce_lib.atlas.html import HIDDEN_NAMES_JS, notebook_frame

    driver = chrome()
    try:
        for seed in range(3):
            host = tmp_path / f"host{seed}.html"
            host.write_text(
                f"<html><body><div style='width:{width}px'>{notebook_frame(random_layout_page(seed)).data}</div></body></html>"
            )
            driver.get(host.resolve().as_uri())
            frame = driver.find_element(By.TAG_NAME, "iframe")
            driver.execute_script("arguments[0].scrollIntoView()", frame)
            driver.switch_to.frame(frame)
            seen = driver.execute_script(HIDDEN_NAMES_JS)
            driver.switch_to.default_content()
            assert seen["n"] == 4 and not seen["hidden"], (seed, width, seen)
            # the frame grew to its page: nothing of the map is cut off at its bottom
            h = driver.execute_script("return arguments[0].getBoundingClientRect().height", frame)
            assert h >= seen["map"][3], (h, seen["map"])
    finally:
        driver.quit()
