"""The human study in a real headless browser (Debian's chromium + chromedriver, no browser download): one
participant goes through consent, issue, two scripted supporters and the Table 9 questions against a real
`extes human-eval serve`; the server is then SIGKILLed and `extes human-eval report` shows the answers."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

EXTES = str(Path(sys.executable).parent / "extes")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
pytestmark = pytest.mark.skipif(not (os.path.exists(CHROMIUM) and os.path.exists(DRIVER)),
                                reason="needs Debian's chromium and chromedriver (apt-get install chromium-driver)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    port, study = free_port(), tmp_path / "study"
    replies = tmp_path / "replies.json"
    replies.write_text(json.dumps(["Emotional Validation", "That sounds so hard. I'm listening, and I'm glad you "
                                   "reached out; what has been the heaviest part of it for you?"]))
    proc = subprocess.Popen([EXTES, "human-eval", "serve", "--supporters", f"echo=scripted,warm=scripted:{replies}",
                             "--out", str(study), "--min-turns", "2", "--port", str(port), "--rules-only-safety"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            break
        except OSError:
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.2)
    yield url, study, proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # never let Selenium Manager fetch a browser or driver
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1000,1400"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=opts)
    yield driver
    driver.quit()


def test_one_participant_through_the_page_then_the_report(server, browser, tmp_path, cli):
    from selenium.webdriver.common.by import By

    url, study, proc = server
    shots = tmp_path / "screens"
    shots.mkdir()

    def submit(element_id):
        # A click that posts a form returns before the next page loads (slow on a busy machine): wait for it.
        from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
        from selenium.webdriver.support.ui import WebDriverWait

        # The page may still be replacing its document when we look ("Node ... does not belong to the document"):
        # wait until it has loaded, and retry a click that lands on a node of the old one.
        WebDriverWait(browser, 60).until(lambda b: b.execute_script("return document.readyState") == "complete")
        old = browser.find_element(By.TAG_NAME, "html")
        WebDriverWait(browser, 60, ignored_exceptions=(StaleElementReferenceException, WebDriverException)).until(
            lambda b: b.find_element(By.ID, element_id).click() or True)
        def replaced(_):  # staleness_of, plus chromium's other word for it on a node of a replaced document
            try:
                old.is_enabled()
            except StaleElementReferenceException:
                return True
            except WebDriverException as e:
                if "does not belong to the document" in str(e):
                    return True
                raise
            return False

        WebDriverWait(browser, 60).until(replaced)

    def shot(name):
        assert "crisis" in browser.find_element(By.ID, "crisis").text.lower()  # resources on every page
        browser.save_screenshot(str(shots / f"{len(list(shots.iterdir())):02d}-{name}.png"))

    browser.get(url)
    assert "at least 2 messages each" in browser.find_element(By.ID, "consent").text
    shot("consent")
    submit("agree")
    code = browser.find_element(By.ID, "participant-code").text
    shot("issue")
    browser.find_element(By.ID, "issue").send_keys("My best friend stopped talking to me after an argument.")
    submit("issue-next")
    for slot in range(2):
        assert f"System {slot + 1}" in browser.title
        assert browser.find_elements(By.ID, "next") == []  # not before --min-turns messages
        for msg in ("We argued about money and she blocked me.", "I keep checking my phone hoping she writes."):
            browser.find_element(By.ID, "message").send_keys(msg)
            submit("send")
        assert browser.find_element(By.ID, "count").text == "2"
        assert len(browser.find_elements(By.CSS_SELECTOR, ".msg.assistant")) == 2
        shot(f"chat-{slot + 1}")
        submit("next")
    assert "ratings" in browser.title
    shot("questions")
    for c in ("fluency", "identification", "comforting", "suggestion"):
        browser.find_element(By.ID, f"q-0-1-{c}-first").click()
    submit("submit-answers")  # one left unanswered: asked again, four kept
    assert "1 left" in browser.find_element(By.CLASS_NAME, "error").text
    browser.find_element(By.ID, "q-0-1-overall-tie").click()
    for c in ("fluency", "identification", "comforting", "suggestion"):
        browser.find_element(By.ID, f"q-0-1-{c}-first").click()
    submit("submit-answers")
    assert code in browser.find_element(By.ID, "thanks").text
    shot("done")
    assert len(list(shots.glob("*.png"))) == 6

    os.kill(proc.pid, signal.SIGKILL)  # a killed server loses nothing already answered
    proc.wait()
    status, out, err = cli("human-eval", "report", study, "--bootstrap", "20", "--json")
    assert status == 0, err
    r = json.loads(out)
    assert r["participants"] == 1 and r["supporters"] == ["echo", "warm"]
    (p,) = r["per_participant"]
    first, second = p["order"]  # System 1 is whichever supporter this participant met first
    assert p["code"] == code and p["messages"] == 8
    assert p["answers"][f"{first} vs {second}: overall"] == "tie"
    rows = {x["criterion"]: x for x in r["table9"]}
    expect_win = 1.0 if first == "echo" else 0.0
    assert rows["fluency"]["win"] == expect_win and rows["overall"]["tie"] == 1.0 and rows["overall"]["n"] == 1
    assert r["fleiss_kappa"]["echo vs warm"]["kappa"] is None  # one rater: no agreement to report
    status, text, _ = cli("human-eval", "report", study, "--bootstrap", "20")
    assert "| Ove. | 0% | 100% | 0% |" in text and "1 participants answered" in text


def test_judge_examples_agreement_and_compile_from_a_study(tmp_path, cli):
    """Two participants' answers in a study file: Fleiss' kappa, the judge's agreement, a compiled judge."""
    from extes.programs.human_eval.store import StudyStore

    store = StudyStore(tmp_path / "s")
    store.save_settings({"supporters": ["short", "long"]})
    for choice in ("second", "second"):
        code = store.new_participant(["short", "long"])
        order = store.participant(code)["order"]
        for slot, name in enumerate(order):
            text = "Okay." if name == "short" else "That sounds really hard; I am here, tell me what happened next."
            store.add_exchange(code, slot, name, "My friend stopped talking to me.",
                               {"reply": text, "crisis": False, "strategy": None})
        for c in ("fluency", "identification", "comforting", "suggestion", "overall"):
            store.add_answer(code, "short", "long", c, choice if c != "fluency" else "tie")
    code_, out, err = cli("human-eval", "report", tmp_path / "s", "--bootstrap", "10", "--json")
    r = json.loads(out)
    assert r["participants"] == 2 and r["fleiss_kappa"]["short vs long"]["raters"] == 2
    assert r["fleiss_kappa"]["short vs long"]["kappa"] == 1.0  # both people gave the same five answers
    code_, out, err = cli("human-eval", "agreement", tmp_path / "s", "--judge", "scripted", "--json")
    a = json.loads(out)
    # The scripted judge prefers the longer supporter: it agrees on the four "long" answers, not on the ties.
    assert a["items"] == 10 and a["agreement"] == 0.8 and a["position_bias_rate"] == 0.0
    prog = tmp_path / "judge.json"
    code_, out, err = cli("compile", "judge", "--optimizer", "labeled", "--trainset", tmp_path / "s", "--valset",
                          tmp_path / "s", "-m", "scripted", "--k", "2", "--out", prog, "--json")
    assert code_ == 0, err
    assert json.loads(out)["valid_after"]["n"] == 10 and prog.exists()
    code_, out, err = cli("human-eval", "agreement", tmp_path / "s", "--program", prog, "--json")
    assert code_ == 0 and json.loads(out)["program"] == str(prog)
