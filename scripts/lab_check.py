"""Notebook 02 in JupyterLab in a real browser: run all, then use the atlas as a person would.

    SNCE_HOME=runs python scripts/lab_check.py [--out runs/lab_check]      (after `make workbook`)

Starts JupyterLab (headless, on 127.0.0.1, a copy of the notebook in a scratch folder so the
repository's file is never touched), opens notebook 02 in headless Chromium (Debian's `chromium`
and `chromium-driver`, driven by selenium), runs all cells and waits for every one to finish, then:
hovers and clicks a point of the interactive map (the hover line and the card change, and the card
shows its feature page: the label with its held-out score, the activation density on a log axis,
top and quantile examples with the end token and padding shaded, co-firing features and the
vocabulary tokens that light it alone), searches the map for a word (its features grow, the card
opens), types a word into the feature browser's search (the card, its page views and its
highlighted tokens change) and a prompt into the prompt lens (its table changes). A screenshot of each step goes to --out. Exits 0 when every check holds, else prints the
failed check and exits 1. Cells that are not in view stay rendered (JupyterLab's windowing is off).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "02_feature_atlas.ipynb"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_lab(folder: Path, port: int, token: str) -> subprocess.Popen:
    settings = folder / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    # full windowing drops cells outside the viewport from the page; the check reads every cell
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    news = folder / "settings" / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True)
    (news / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))  # no pop-up
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={folder / 'nb'}",
           f"--LabApp.user_settings_dir={folder / 'settings'}", "--LabApp.expose_app_in_browser=True",
           f"--LabApp.workspaces_dir={folder / 'ws'}"]  # fmt: skip
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # containers and CI run as root; Jupyter refuses it otherwise
    log = open(folder / "lab.log", "w")
    # one compute thread for the kernel: Chromium's renderer holds a core while Lab draws the outputs,
    # and torch's two OpenMP threads then wait on each other (notebook 02's strip cell took 164 s here
    # against 4 s headless; 2026-12-07, 2 cores)
    env = {**os.environ, "JUPYTER_NO_CONFIG": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    for _ in range(120):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"JupyterLab exited at start; its log: {folder / 'lab.log'}") from None
            time.sleep(0.5)
    raise SystemExit("JupyterLab did not open its port within 60 s")


def browser():
    from selenium import webdriver

    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        raise SystemExit("needs Chromium and chromedriver (Debian: apt-get install chromium chromium-driver)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        opts.add_argument(a)
    return webdriver.Chrome(service=webdriver.ChromeService(shutil.which("chromedriver")), options=opts)


def wait(what: str, fn, timeout: float, every: float = 1.0):
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            v = fn()
            if v:
                return v
        except Exception:  # the page is still building: try again
            pass
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


PROMPTS_JS = "return [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(e => e.textContent.trim())"
# every error output in the notebook's model (a failed cell stops Run All; its successors stay unnumbered)
ERRORS_JS = """const m = window.jupyterapp.shell.currentWidget.content.model, out = [];
for (let i = 0; i < m.cells.length; i++) { const c = m.cells.get(i); if (c.type !== 'code') continue;
  for (let j = 0; j < c.outputs.length; j++) { const o = c.outputs.get(j).toJSON();
    if (o.output_type === 'error') out.push('cell ' + i + ': ' + o.ename + ': ' + o.evalue); } }
return out;"""


def check_page_views(driver, By) -> str:
    """The atlas page's card (inside its frame) shows every view of a feature page; returns a summary."""
    label = driver.find_element(By.ID, "label").text
    assert "held-out prompts" in label, label
    bars = driver.find_elements(By.CSS_SELECTOR, "#density svg rect")
    assert bars, "the card draws no activation density"
    assert "positions (log)" in driver.find_element(By.ID, "density").text
    bands = driver.find_element(By.ID, "bands").text
    assert "Quantile" in bands, "the card shows no quantile examples"
    cofire = driver.find_elements(By.CSS_SELECTOR, "#cofire a")
    vocab = driver.find_element(By.ID, "vocab").text
    assert vocab.startswith("Vocabulary alone") and "not computed" not in vocab, vocab
    cells = driver.find_elements(By.CSS_SELECTOR, "#card .tok")
    pads = driver.find_elements(By.CSS_SELECTOR, "#card .tok.pad, #card .padrun")
    assert pads, "the card's examples show no padding"
    assert driver.find_elements(By.ID, "draws"), "the card keeps no place for what it draws"
    return (
        f"{len(bars)} density bars, {bands.count('Quantile')} quantile bands, {len(cofire)} co-firing links, "
        f"{len(cells)} shaded cells ({len(pads)} padding), vocabulary: {vocab[:60]!r}"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="runs/lab_check", help="folder for the screenshots")
    ap.add_argument("--timeout", type=float, default=900, help="seconds allowed for Run All")
    a = ap.parse_args()
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from snce_lib.atlas.html import HIDDEN_NAMES_JS

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="snce-lab-"))
    (scratch / "nb").mkdir()
    shutil.copy(ROOT / "notebooks" / NOTEBOOK, scratch / "nb" / NOTEBOOK)
    port, token = free_port(), secrets.token_hex(16)
    lab = start_lab(scratch, port, token)
    driver = browser()
    step = 0

    def shot(name: str) -> None:
        nonlocal step
        step += 1
        driver.save_screenshot(str(out / f"{step:02d}_{name}.png"))

    try:
        driver.get(f"http://127.0.0.1:{port}/lab/tree/{NOTEBOOK}?token={token}")
        wait("the notebook to open", lambda: driver.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell"), 120)
        wait("the kernel", lambda: driver.execute_script(
            "const w = window.jupyterapp.shell.currentWidget; return w && w.sessionContext.session "
            "&& w.sessionContext.session.kernel && w.sessionContext.session.kernel.status === 'idle'"), 120)  # fmt: skip
        shot("opened")
        t0 = time.time()
        driver.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        n = len(driver.execute_script(PROMPTS_JS))

        def finished():
            failed = driver.execute_script(ERRORS_JS)
            if failed:
                raise SystemExit(f"lab_check: FAILED: a cell raised in JupyterLab: {failed[0]}")
            prompts = driver.execute_script(PROMPTS_JS)
            status = driver.execute_script(
                "return window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status"
            )
            return status == "idle" and all(p.startswith("[") and p[1:-2].strip().isdigit() for p in prompts)

        try:
            wait(f"Run All over {n} code cells", finished, a.timeout, every=3)
        except AssertionError:
            shot("run_all_stuck")
            raise
        print(f"lab_check: Run All finished {n} code cells in {time.time() - t0:.0f} s")
        shot("ran_all")

        # the shareable atlas, shown in the notebook as an iframe: hover, click, search
        frame = wait("the atlas frame", lambda: driver.find_element(By.CSS_SELECTOR, ".jp-OutputArea iframe"), 30)
        driver.execute_script("arguments[0].scrollIntoView()", frame)
        driver.switch_to.frame(frame)
        dots = driver.find_elements(By.CSS_SELECTOR, "#map circle")
        assert len(dots) > 100, f"the map shows {len(dots)} points"
        ActionChains(driver).move_to_element(dots[len(dots) // 2]).perform()
        hover = wait("the hover line", lambda: driver.find_element(By.ID, "hover").text, 10)
        assert hover.startswith("feature "), hover
        ActionChains(driver).click().perform()  # where the pointer is: the point the hover line names
        card = driver.find_element(By.ID, "card").text
        assert card.startswith(hover.split(":")[0] + ":"), (hover, card)
        check_page_views(driver, By)
        seen = driver.execute_script(HIDDEN_NAMES_JS)  # boxes against the frame's visible area, not `.text`
        assert seen["n"] >= 10, f"the map prints {seen['n']} cluster names"
        assert not seen["hidden"], (
            f"cluster names outside the visible map (name, box; map {seen['map']}): {seen['hidden']}"
        )
        driver.switch_to.default_content()
        outer = driver.execute_script(
            "const r = arguments[0].getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom, "
            "window.innerWidth, window.innerHeight]", frame)  # fmt: skip
        assert outer[0] >= 0 and outer[2] <= outer[4] + 1, f"the atlas frame runs past the window's width: {outer}"
        assert outer[1] + seen["map"][3] <= outer[5] + 1, f"the map runs past the window's height: {outer}"
        print(
            f"lab_check: {seen['n']} cluster names, each inside the visible map (frame {outer[2] - outer[0]:.0f} px wide)"
        )
        driver.switch_to.frame(frame)
        box = driver.find_element(By.ID, "search")
        box.send_keys("red", Keys.ENTER)
        status = driver.find_element(By.ID, "status").text
        assert "fire on 'red'" in status, status
        first = int(status.split(": ")[1].split(",")[0])
        assert driver.find_element(By.ID, f"f{first}").get_attribute("r") == "7"
        assert driver.find_element(By.ID, "card").text.startswith(f"feature {first}:")
        views = check_page_views(driver, By)
        print(f"lab_check: the card of feature {first} ('red'): {views}")
        driver.switch_to.default_content()
        driver.execute_script("arguments[0].scrollIntoView()", frame)
        shot("atlas_frame_search_red")

        # the feature browser (ipywidgets): a word search changes the card and its highlighted tokens
        word = wait("the browser's search box", lambda: driver.find_element(
            By.CSS_SELECTOR, "input[placeholder='search by word, e.g. naked']"), 60)  # fmt: skip
        driver.execute_script("arguments[0].scrollIntoView()", word)
        card_box = word.find_element(By.XPATH, "ancestor::div[contains(@class,'widget-vbox')][1]")

        def card_html():
            return card_box.find_element(By.CSS_SELECTOR, ".widget-html-content h4").text

        before = card_html()
        word.send_keys("painting", Keys.ENTER)
        after = wait("the card to change", lambda: (card_html() != before) and card_html(), 30)
        lit = card_box.find_elements(By.CSS_SELECTOR, ".widget-html-content span[title]")
        shaded = [s for s in lit if "rgba(255, 80, 0, 0)" not in (s.get_attribute("style") or "")]
        assert shaded, "the card highlights the tokens its feature fires on"
        text = card_box.find_element(By.CSS_SELECTOR, ".snce-card").text
        for part in (
            "held-out prompts",
            "Activation density",
            "Top activations",
            "Quantile",
            "Co-fires with",
            "Vocabulary alone",
        ):
            assert part in text, f"the browser's card lacks '{part}'"
        assert card_box.find_elements(By.CSS_SELECTOR, "svg.snce-density rect"), "the card draws its density"
        print(f"lab_check: browser search 'painting': {before!r} -> {after!r}; {len(shaded)} tokens highlighted")
        shot("browser_search_painting")

        # the prompt lens: a typed prompt, token by token
        lens = driver.find_element(By.CSS_SELECTOR, "input[placeholder='type a prompt, then Enter']")
        driver.execute_script("arguments[0].scrollIntoView()", lens)
        lens_box = lens.find_element(By.XPATH, "ancestor::div[contains(@class,'widget-vbox')][1]")
        table = lens_box.find_element(By.CSS_SELECTOR, "table").text
        lens.send_keys(Keys.CONTROL, "a")
        lens.send_keys("a red sports car on a bridge", Keys.ENTER)
        wait("the lens table to change", lambda: lens_box.find_element(By.CSS_SELECTOR, "table").text != table, 30)
        rows = lens_box.find_elements(By.CSS_SELECTOR, "table tr")
        assert any("sports" in r.text for r in rows), [r.text for r in rows][:4]
        print(f"lab_check: prompt lens shows {len(rows) - 1} token rows for 'a red sports car on a bridge'")
        shot("prompt_lens")
        print(f"lab_check: all checks passed; screenshots in {out}")
        return 0
    except AssertionError as exc:
        print(f"lab_check: FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        driver.quit()
        lab.terminate()
        lab.wait(timeout=30)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
