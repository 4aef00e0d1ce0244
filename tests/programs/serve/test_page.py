"""The web chat page (assets/web/chat.html) in Debian's headless chromium, against a real server."""

import json
import shutil
import time

import pytest

from extes.programs.lm.scripted import ScriptedLM
from extes.programs.safety import SafetyChecker
from extes.programs.serve.app import create_app
from extes.programs.serve.engine import Engine
from extes.signatures.dialogue import Dialogue

pytestmark = pytest.mark.skipif(not shutil.which("chromedriver") or not shutil.which("chromium"),
                                reason="needs Debian's chromium and chromedriver (apt-get install chromium-driver)")


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,800"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    yield driver
    driver.quit()


def _wait(fn, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting for the page")


def test_page_streams_a_reply_with_its_strategy_and_renders_a_crisis(serve, browser, tmp_path):
    from selenium.webdriver.common.by import By

    server = serve(create_app(Engine({"scripted": ScriptedLM()}, checker=SafetyChecker(rules_only=True))))
    browser.get(server.url + "/")
    _wait(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#force option")) == 17)  # automatic + 16
    browser.find_element(By.ID, "msg").send_keys("I failed my exam, what should I do?")
    browser.find_element(By.ID, "send").click()
    done = _wait(lambda: browser.find_elements(By.CSS_SELECTOR, ".turn.assistant[data-done='1']"))
    assert done[0].find_element(By.CSS_SELECTOR, ".strategy").text == "Suggest Options"
    assert "failed my exam" in done[0].find_element(By.CSS_SELECTOR, ".text").text

    # a forced strategy from the menu, then a crisis message, rendered apart
    browser.find_element(By.CSS_SELECTOR, "#force option[value='Reflective Statements']").click()
    browser.find_element(By.ID, "msg").send_keys("Thanks. It has been a hard week.")
    browser.find_element(By.ID, "send").click()
    _wait(lambda: len(browser.find_elements(By.CSS_SELECTOR, ".turn.assistant[data-done='1']")) == 2)
    browser.find_element(By.ID, "msg").send_keys("I have a plan to kill myself tonight.")
    browser.find_element(By.ID, "send").click()
    crisis = _wait(lambda: browser.find_elements(By.CSS_SELECTOR, ".turn.assistant.crisis[data-done='1']"))
    assert crisis[0].find_element(By.CSS_SELECTOR, ".strategy").text == "safety"
    strategies = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".turn.assistant .strategy")]
    assert strategies == ["Suggest Options", "Reflective Statements", "safety"]

    # the transcript the download button saves is one corpus Dialogue
    line = browser.execute_script("return window.extesTranscript();")
    d = Dialogue.model_validate(json.loads(line))
    assert [t.role for t in d.turns] == ["user", "assistant"] * 3 and d.meta.safety_events[0]["turn"] == 4
    shot = tmp_path / "chat.png"
    assert browser.save_screenshot(str(shot)) and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 5000
