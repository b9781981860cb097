"""The web app in a real browser: `cyclestyle serve` on a free port, the system's headless Chromium
(Debian's chromium and chromium-driver, which scripts/setup.sh test installs) driven by Selenium
uploads an image, picks a direction and translate's options, translates, and reads the result back
from the page and through its download button: it equals `cyclestyle translate`'s output for the
same image and options, at the image's size. Neither the server nor the page reaches past this
machine: the server's HTTP goes through a proxy here that records every request, and the
browser's requests are read from its network log."""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from io import BytesIO
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
from PIL import Image

from cyclestyle.cli import main

from .conftest import REPO, cli
from .test_app import RUN, photo

pytestmark = pytest.mark.slow  # a server, a browser and two translations

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"  # never a downloaded browser
LOCAL = {"127.0.0.1", "localhost"}
INSIDE = ("data", "blob", "about")  # URLs that are no request to any host
TIMEOUT = 180  # seconds for the server to start, the page to load, a translation: generous on a loaded machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RecordingProxy(http.server.ThreadingHTTPServer):
    """An HTTP(S) proxy that forwards nothing: it notes each request it is asked to make."""

    def __init__(self):
        self.seen: list[str] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def refuse(self):
                proxy.seen.append(self.requestline)
                self.send_error(403)

            do_GET = do_POST = do_HEAD = do_PUT = do_CONNECT = refuse

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)


@pytest.fixture(scope="module")
def proxy():
    server = RecordingProxy()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def served(proxy):
    """`cyclestyle serve` of the tiny run, every outside request of it sent to the recording proxy."""
    address = f"http://127.0.0.1:{proxy.server_address[1]}"
    proxies = {"HTTP_PROXY": address, "HTTPS_PROXY": address, "ALL_PROXY": address, "NO_PROXY": "127.0.0.1,localhost"}
    env = os.environ | proxies | {k.lower(): v for k, v in proxies.items()}
    env["GRADIO_ANALYTICS_ENABLED"] = "True"  # serve turns it off whatever the environment says
    started = time.perf_counter()
    proc = subprocess.Popen(cli("serve", str(RUN), "--port", str(free_port()), "--device", "cpu"), cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []

    def read() -> None:  # what it prints, as it prints it; and its pipe never fills
        for line in proc.stdout:
            lines.append(line)

    threading.Thread(target=read, daemon=True).start()
    serving = wait_for(lambda: [line for line in lines if line.startswith("serving on ")] or proc.poll() is not None,
                       "serve to start")
    assert serving is not True, "".join(lines)  # it exited
    url = serving[0].split()[2]
    print(f"\nserve started in {time.perf_counter() - started:.1f} s at {url}")
    yield url, proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # Ctrl-C stops it, cleanly
        try:
            assert proc.wait(timeout=60) == 0, "".join(lines)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,1400", "--no-first-run", "--disable-background-networking"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    # An explicit driver: Selenium Manager, which would download one, is never asked.
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    downloads = tmp_path_factory.mktemp("downloads")
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    yield driver, downloads
    driver.quit()


def wait_for(condition, what: str, timeout: float = TIMEOUT):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"waited {timeout} s for {what}")


def test_the_page_translates_an_upload_as_translate_does_and_offers_it_for_download(served, browser, proxy,
                                                                                    tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    url, _ = served
    driver, downloads = browser
    css = lambda selector: driver.find_elements(By.CSS_SELECTOR, selector)  # noqa: E731
    source = photo(tmp_path / "street.png", size=(170, 130))  # tiled: 112-px tiles
    started = time.perf_counter()

    driver.get(url)
    wait_for(lambda: css("#source input[type=file]"), "the upload box")
    css("#source input[type=file]")[0].send_keys(str(source))
    wait_for(lambda: css("#source img"), "the uploaded image's preview")
    driver.find_element(By.XPATH, "//*[@id='direction']//label[contains(., 'B → A')]").click()
    driver.find_element(By.XPATH, "//*[contains(text(), \"Options (as cyclestyle translate's)\")]").click()
    for selector, value in (("#tile input, #tile textarea", "112"), ("#overlap input, #overlap textarea", "8"),
                            ("#strength input[type=number]", "0.6")):
        box = wait_for(lambda: css(selector), selector)[0]
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(value, Keys.TAB)
    css("#preserve-color input[type=checkbox]")[0].click()
    css("#translate")[0].click()

    note = wait_for(lambda: [e.text for e in css("#note") if "px in" in e.text], "the translation")[0]
    assert "v0.2-run, B → A: 170×130 px" in note
    assert "overlap 8 px is less than the 28 px" in note  # the tile boxes reached the server: it raised the overlap
    src = css("#result img")[0].get_attribute("src")
    with urllib.request.urlopen(src, timeout=30) as response:  # what the page shows
        shown = np.asarray(Image.open(BytesIO(response.read())))
    css("#download")[0].click()
    saved = wait_for(lambda: [p for p in downloads.iterdir() if p.name.endswith("-BtoA.png")], "the download")[0]
    print(f"page, upload, translation and download in {time.perf_counter() - started:.1f} s")

    # `cyclestyle translate` with the same image and options, and without the options
    args = ["translate", "--weights", str(RUN), "--direction", "BtoA", "--device", "cpu", str(source)]
    assert main([*args, "--output", str(tmp_path / "cli"), "--tile", "112", "--overlap", "8",
                 "--style-strength", "0.6", "--preserve-color"]) == 0
    assert main([*args, "--output", str(tmp_path / "plain")]) == 0
    expected = np.asarray(Image.open(tmp_path / "cli" / "street.png"))
    plain = np.asarray(Image.open(tmp_path / "plain" / "street.png"))
    downloaded = np.asarray(Image.open(saved))
    assert shown.shape == downloaded.shape == expected.shape == (130, 170, 3)
    assert np.array_equal(shown, downloaded)
    assert np.abs(shown.astype(int) - expected).max() <= 2  # the same computation in another process: 8-bit rounding
    assert np.abs(plain.astype(int) - expected).max() > 10  # the page's options took effect

    events = [json.loads(entry["message"])["message"] for entry in driver.get_log("performance")]
    requested = {e["params"]["request"]["url"] for e in events if e["method"] == "Network.requestWillBeSent"}
    outside = [u for u in requested if urlparse(u).scheme not in INSIDE and urlparse(u).hostname not in LOCAL]
    assert requested and not outside, outside  # fonts, scripts, analytics: all from this machine or none
    assert proxy.seen == []  # the server tried to reach nothing past this machine (Ctrl-C: the fixture's end)


def test_a_runs_samples_page_shows_its_panels_newest_first_with_no_server(browser, tiny_config):
    """Issue 24, item 4: a run with no dashboard is watchable from samples/index.html, opened as a
    file: every panel image loads, newest step first, each with its losses."""
    from selenium.webdriver.common.by import By

    from cyclestyle.training.loop import train

    driver, _ = browser
    run = train(tiny_config("log.with=none", "train.max_steps=4", "train.log_every=1", "log.images_every=2",
                            "log.num_images=1", "eval.every=0"))
    driver.get((run / "samples" / "index.html").resolve().as_uri())
    sections = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "section[id^=step-]"), "the samples page")
    assert [s.get_attribute("id") for s in sections] == ["step-4", "step-2"]
    pictures = driver.find_elements(By.TAG_NAME, "img")
    assert len(pictures) == 2
    for picture in pictures:  # decoded by the browser, at the size of the PNG on disk
        width, height = driver.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", picture)
        src = Path(urlparse(picture.get_attribute("src")).path)
        assert (width, height) == Image.open(src).size and width > 0
    assert "cycle_A" in sections[0].text


def test_the_page_translates_a_video_on_its_video_tab(served, browser, tmp_path):
    """Issue 24, item 2: a short clip dropped on the Video tab comes back translated (same frames,
    size and sound, as `translate` writes it), shown in the player and offered for download."""
    from selenium.webdriver.common.by import By

    from .test_video import audio_packets, decoded, pan, write_clip

    url, _ = served
    driver, downloads = browser
    css = lambda selector: driver.find_elements(By.CSS_SELECTOR, selector)  # noqa: E731
    source = tmp_path / "walk.mp4"
    write_clip(source, pan(5, 64, 48))

    driver.get(url)
    wait_for(lambda: driver.find_elements(By.XPATH, "//button[@role='tab'][contains(., 'Video')]"), "the tabs")[0].click()
    wait_for(lambda: css("#clip input[type=file]"), "the video upload box")[0].send_keys(str(source))
    wait_for(lambda: [e for e in css("#clip") if "KB" in e.text], "the uploaded clip")
    css("#stable input[type=checkbox]")[0].click()
    css("#translate-clip")[0].click()
    note = wait_for(lambda: [e.text for e in css("#note") if "frames" in e.text], "the translation")[0]
    assert "v0.2-run, A → B: 5 frames (stable)" in note
    assert wait_for(lambda: css("#clip-result video"), "the player")
    css("#download")[0].click()
    saved = wait_for(lambda: [p for p in downloads.iterdir() if p.name.endswith("-AtoB.mp4")], "the download")[0]
    frames = decoded(saved)
    assert len(frames) == 5 and frames[0].shape == (48, 64, 3)
    assert audio_packets(saved) == audio_packets(source)
