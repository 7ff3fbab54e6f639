"""The shareable atlas: its data, and the page itself in a real headless browser (Chromium via
selenium; skipped where Chromium, chromedriver or selenium is missing)."""

import os
import shutil

import numpy as np
import pytest

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
    assert {"red", "crimson"} <= set(t for t, _ in f1["top"]) and f1["ex"] and f1["hist"]
    words = [d["prompts"][p][np.argmax(acts)] for p, acts, _ in f2["ex"]]
    assert set(words) <= {"cat", "kitten"}  # the highlighted token of each example is a cat word
    assert d["words"]["crimson"][0] == 1 and d["words"]["kitten"][0] == 2
    assert d["features"][3]["status"] == "dead" and d["features"][3]["ex"] == []
    assert d["clusters"]["1"] == "red / crimson"


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
