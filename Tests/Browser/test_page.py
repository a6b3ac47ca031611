"""End-to-end test of `unilip serve` in headless Chromium: drives the page through all four
features (ask, reconstruct, edit, generate), checks the results and an API error shown in the
page, and saves a screenshot.

    python3 Tests/Browser/test_page.py [--screenshot out/serve.png] [--steps N]
"""
import argparse
import os
import re
import sys
import tempfile
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

sys.path.insert(0, os.path.dirname(__file__))
from serve_process import ROOT, Server  # noqa: E402

JOB_TIMEOUT = 240


def make_driver():
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1360,1000", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # Debian's driver, named explicitly so Selenium never tries to download one.
    service = Service(executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    return webdriver.Chrome(options=options, service=service)


class Page:
    def __init__(self, driver):
        self.d = driver

    def el(self, id_):
        return self.d.find_element(By.ID, id_)

    def wait(self, condition, timeout=30, message=""):
        return WebDriverWait(self.d, timeout, poll_frequency=0.05).until(lambda d: condition(), message)

    def set_text(self, id_, text):
        field = self.el(id_)
        field.clear()
        field.send_keys(text)

    def run(self, task):
        """Clicks TASK-btn, records the progress texts seen, waits for the card to finish."""
        card = self.el(task + "-card")
        self.el(task + "-btn").click()
        seen = []
        start = time.time()
        while time.time() - start < JOB_TIMEOUT:
            state = card.get_attribute("data-state")
            status = self.el(task + "-status").text
            if status and (not seen or seen[-1] != status):
                seen.append(status)
            if state in ("done", "failed") and not self.el(task + "-btn").get_attribute("disabled"):
                return state, seen, time.time() - start
            time.sleep(0.05)
        raise AssertionError("%s did not finish in %d s (progress seen: %s)" % (task, JOB_TIMEOUT, seen))

    def image_loaded(self, id_):
        return self.d.execute_script(
            "const i = document.getElementById(arguments[0]); return i.complete && i.naturalWidth > 0 ? i.naturalWidth : 0;", id_)


def check(condition, message):
    if not condition:
        raise AssertionError(message)
    print("  ok:", message, flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--screenshot", default=os.path.join(ROOT, "out", "serve.png"))
    parser.add_argument("--steps", type=int, default=20, help="denoising steps set in the page for edit and generate")
    args = parser.parse_args()
    started = time.time()
    with Server() as server:
        driver = make_driver()
        try:
            page = Page(driver)
            driver.get(server.url + "/")
            check("UniLIP" in driver.title, "page title is UniLIP")
            page.wait(lambda: driver.find_elements(By.ID, "sample-test-2"), message="samples listed")
            check(len(driver.find_elements(By.CSS_SELECTOR, "#samples .sample")) == 8, "eight sample scenes shown")
            page.wait(lambda: "ready" in page.el("health").text, message="health badge")

            # An API error appears in the page: an empty question is refused with 400.
            page.el("sample-test-2").click()
            page.wait(lambda: "test-2" in page.el("selected-name").text, message="sample selected")
            sample_question = page.el("question").get_attribute("value")
            check(sample_question.strip() != "", "question prefilled from the sample: %r" % sample_question)
            page.set_text("question", " ")
            state, _, _ = page.run("ask")
            check(state == "failed", "empty question fails")
            check("empty" in page.el("ask-error").text, "API error shown in the card: %r" % page.el("ask-error").text)
            check("empty" in page.el("error").text, "API error shown in the banner")

            # Ask the sample's own question.
            page.set_text("question", sample_question)
            state, seen, secs = page.run("ask")
            answer = page.el("ask-answer").text
            check(state == "done" and answer.strip() != "", "ask answered %r in %.1f s" % (answer, secs))
            check(page.el("error").text == "", "error banner cleared after a success")

            # Edit the selected sample with its own instruction.
            page.set_text("steps", str(args.steps))
            instruction = page.el("instruction").get_attribute("value")
            check(instruction.strip() != "", "instruction prefilled from the sample: %r" % instruction)
            state, seen, secs = page.run("edit")
            check(state == "done", "edit finished in %.1f s" % secs)
            page.wait(lambda: page.image_loaded("edit-image"), message="edit image loads")
            check(page.image_loaded("edit-image") == 64, "edited image shown (64 px)")
            check(any("%" in s for s in seen), "progress shown while editing: %s" % seen[:6])

            # Reconstruct an uploaded PNG (a sample scene saved to disk, then uploaded through the file input).
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "upload.png")
                with urllib.request.urlopen(server.url + "/api/samples/test-5.png") as r, open(path, "wb") as f:
                    f.write(r.read())
                page.el("upload").send_keys(path)
                page.wait(lambda: "upload.png" in page.el("selected-name").text, message="upload selected")
                state, seen, secs = page.run("reconstruct")
            check(state == "done", "reconstruct finished in %.1f s" % secs)
            page.wait(lambda: page.image_loaded("reconstruct-image"), message="reconstruction loads")
            psnr_text = page.el("reconstruct-psnr").text
            match = re.search(r"PSNR\s+([0-9.]+)\s*dB", psnr_text)
            check(match is not None and float(match.group(1)) > 15, "reconstruction shown with %r" % psnr_text.replace("\n", " "))

            # Generate from a prompt.
            # The tiny model knows its training captions' style.
            prompt = "a large red circle at the middle left and a large blue square at the middle right on a wavy background."
            page.set_text("prompt", prompt)
            state, seen, secs = page.run("generate")
            check(state == "done", "generate finished in %.1f s" % secs)
            page.wait(lambda: page.image_loaded("generate-image"), message="generated image loads")
            check(page.image_loaded("generate-image") == 64, "generated image shown (64 px)")
            check(page.el("generate-caption").text == prompt, "prompt shown under the image")
            check(page.el("generate-progress").value_of_css_property("width") != "0px", "progress bar filled")
            print("  progress texts seen while generating:", seen, flush=True)

            severe = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"
                      and "api/jobs" not in e.get("message", "")]
            check(not severe, "no console errors besides the deliberate 400 (%s)" % severe)

            # Grow the window until the whole page fits in the viewport, then capture it.
            for _ in range(3):
                height, inner, outer = driver.execute_script(
                    "return [document.documentElement.scrollHeight, window.innerHeight, window.outerHeight]")
                if inner >= height:
                    break
                driver.set_window_size(1360, int(height) + int(outer) - int(inner))
            os.makedirs(os.path.dirname(os.path.abspath(args.screenshot)), exist_ok=True)
            driver.save_screenshot(args.screenshot)
            print("  screenshot:", args.screenshot, flush=True)
        finally:
            driver.quit()
        check(server.alive(), "server still running")
    print("browser test passed in %.1f s" % (time.time() - started), flush=True)


if __name__ == "__main__":
    main()
