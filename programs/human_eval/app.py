"""The human study's web app (Starlette/FastAPI, server-rendered forms, no JavaScript needed).

consent → participant code → the issue (picked from the 36 scenes or written) → a conversation with each supporter
in turn (order random per participant, shown as "System 1", "System 2", ...; at least `min_turns` messages each,
then free to go on) → the five Table 9 questions for every pair of systems → done. Every message goes through the
crisis layer before any supporter sees it (programs/runtime.py). Every page carries the consent text and the crisis
resources (assets/web/human_eval.html).
"""

from __future__ import annotations

import html
from itertools import combinations
from string import Template
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from extes.corpus.assets import assets_dir, load_taxonomy
from extes.programs.human_eval.store import StudyStore
from extes.programs.runtime import MAX_MESSAGE_CHARS
from extes.programs.safety import escalation_message
from extes.signatures.arena import CRITERIA

CONSENT = ("You will talk about one emotional issue of your own with several automatic support systems, one after "
           "another, for at least {n} messages each, and then say which one did better on five questions. Please "
           "write only what you are comfortable sharing; do not give your name or other identifying details. Your "
           "answers and conversations are stored for research under a random participant code.")
QUESTION_TEXT = {
    "fluency": "Fluency: which system's responses were more coherent and easily comprehensible?",
    "identification": "Identification: which system delved deeper into your situation, identifying your problems?",
    "comforting": "Comforting: which system displayed more adeptness in providing comfort and support?",
    "suggestion": "Suggestion: which system offered more helpful suggestions for addressing your issues?",
    "overall": "Overall: which system's emotional support did you prefer in general?",
}
assert set(QUESTION_TEXT) == set(CRITERIA)


def _e(text) -> str:
    return html.escape(str(text))


def create_app(store: StudyStore, supporters: dict, *, min_turns: int = 10, locale: str | None = None):
    """The ASGI app for one study. `supporters`: name → object with `.reply(history, message) -> dict`."""
    page = Template((assets_dir() / "web" / "human_eval.html").read_text(encoding="utf-8"))
    crisis = _e(escalation_message(locale))
    app = FastAPI(title="extes human evaluation", docs_url=None, redoc_url=None, openapi_url=None)

    def render(title: str, body: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(page.substitute(title=_e(title), body=body, crisis=crisis), status_code=status)

    def go(url: str) -> RedirectResponse:
        return RedirectResponse(url, status_code=303)

    async def form(request: Request) -> dict[str, str]:
        raw = (await request.body()).decode("utf-8", "replace")
        return {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}

    def who(code: str):
        p = store.participant(code)
        if p is None:
            return None, render("Unknown code", f"<p class='error'>No participant with the code {_e(code)}. "
                                "<a href='/'>Start again</a> or check the code.</p>", 404)
        return p, None

    @app.get("/", response_class=HTMLResponse)
    def home():
        body = (f"<p id='consent'>{_e(CONSENT.format(n=min_turns))}</p>"
                "<form method='post' action='/start'><button id='agree' type='submit'>I agree, start</button></form>"
                "<form method='get' action='/resume'><p class='muted'>Already have a code? "
                "<input name='code' id='code' placeholder='ABCD-EF01-2345'> <button type='submit'>Resume</button>"
                "</p></form>")
        return render("Welcome", body)

    @app.post("/start")
    def start():
        return go(f"/p/{store.new_participant(list(supporters))}/issue")

    @app.get("/resume")
    def resume(code: str = ""):
        p, err = who(code)
        return err or go(f"/p/{p['code']}/{'issue' if p['stage'] == 'issue' else p['stage']}")

    @app.get("/p/{code}/issue", response_class=HTMLResponse)
    def issue_page(code: str, error: str = ""):
        p, err = who(code)
        if err:
            return err
        options = "".join(f"<option>{_e(s)}</option>" for s in load_taxonomy().scenario_names)
        body = (f"<p>Your participant code is <strong id='participant-code'>{_e(p['code'])}</strong>; keep it to "
                "come back later.</p>" + (f"<p class='error'>{_e(error)}</p>" if error else "") +
                f"<form method='post' action='/p/{_e(p['code'])}/issue'>"
                "<p>What would you like to talk about? Pick a topic or describe it in your own words.</p>"
                f"<p><select name='scene' id='scene'><option value=''>(choose a topic)</option>{options}</select></p>"
                "<p><textarea name='issue' id='issue' placeholder='In my own words...'></textarea></p>"
                "<button id='issue-next' type='submit'>Continue</button></form>")
        return render("Your issue", body)

    @app.post("/p/{code}/issue")
    async def issue_post(code: str, request: Request):
        p, err = who(code)
        if err:
            return err
        f = await form(request)
        text = (f.get("issue") or "").strip() or (f.get("scene") or "").strip()
        if not text:
            return issue_page(code, error="Pick a topic or write a sentence about your issue.")
        store.set_issue(p["code"], text[:MAX_MESSAGE_CHARS])
        return go(f"/p/{p['code']}/chat/0")

    @app.get("/p/{code}/chat/{slot}", response_class=HTMLResponse)
    def chat_page(code: str, slot: int, error: str = ""):
        p, err = who(code)
        if err:
            return err
        if not 0 <= slot < len(p["order"]):
            return go(f"/p/{p['code']}/rate")
        msgs = store.messages(p["code"], slot)
        n_user = sum(1 for m in msgs if m["role"] == "user")
        shown = "".join(f"<div class='msg {m['role']}{' crisis' if m['crisis'] and m['role'] == 'assistant' else ''}'>"
                        f"{_e(m['text'])}</div>" for m in msgs)
        left = max(0, min_turns - n_user)
        done = (f"<form method='post' action='/p/{_e(p['code'])}/next/{slot}'><button id='next' type='submit'>"
                f"Finish with System {slot + 1}</button></form>") if left == 0 else \
            f"<p class='muted' id='left'>{left} more message(s) before you can move on.</p>"
        body = (f"<p class='muted'>Your issue: {_e(p['issue'])} · System {slot + 1} of {len(p['order'])} · "
                f"<span id='count'>{n_user}</span> message(s) sent</p><div id='transcript'>{shown}</div>"
                + (f"<p class='error'>{_e(error)}</p>" if error else "") +
                f"<form method='post' action='/p/{_e(p['code'])}/chat/{slot}'>"
                "<textarea name='message' id='message' placeholder='Type your message'></textarea>"
                "<button id='send' type='submit'>Send</button></form>" + done)
        return render(f"Talking with System {slot + 1}", body)

    @app.post("/p/{code}/chat/{slot}")
    async def chat_post(code: str, slot: int, request: Request):
        p, err = who(code)
        if err:
            return err
        if not 0 <= slot < len(p["order"]):
            return go(f"/p/{p['code']}/rate")
        text = ((await form(request)).get("message") or "").strip()
        if not text or len(text) > MAX_MESSAGE_CHARS:
            return chat_page(code, slot, error=f"Write a message of 1 to {MAX_MESSAGE_CHARS} characters.")
        name = p["order"][slot]
        history = [{"role": m["role"], "text": m["text"]} for m in store.messages(p["code"], slot)]
        reply = supporters[name].reply(history, text)
        store.add_exchange(p["code"], slot, name, text, reply)
        return go(f"/p/{p['code']}/chat/{slot}")

    @app.post("/p/{code}/next/{slot}")
    def next_post(code: str, slot: int):
        p, err = who(code)
        if err:
            return err
        n_user = sum(1 for m in store.messages(p["code"], slot) if m["role"] == "user")
        if n_user < min_turns:
            return chat_page(code, slot, error=f"Please send at least {min_turns} messages to this system first.")
        if slot + 1 < len(p["order"]):
            return go(f"/p/{p['code']}/chat/{slot + 1}")
        store.set_stage(p["code"], "rate")
        return go(f"/p/{p['code']}/rate")

    def pairs(p) -> list[tuple[int, int]]:
        return list(combinations(range(len(p["order"])), 2))

    @app.get("/p/{code}/rate", response_class=HTMLResponse)
    def rate_page(code: str, error: str = ""):
        p, err = who(code)
        if err:
            return err
        blocks = []
        for i, j in pairs(p):
            qs = "".join(
                f"<fieldset><legend>{_e(q)}</legend>" + "".join(
                    f"<label><input type='radio' name='{i}-{j}-{c}' value='{v}' id='q-{i}-{j}-{c}-{v}'> {lab}</label> "
                    for v, lab in (("first", f"System {i + 1}"), ("tie", "No difference"),
                                   ("second", f"System {j + 1}")))
                + "</fieldset>" for c, q in QUESTION_TEXT.items())
            blocks.append(f"<h2>System {i + 1} or System {j + 1}?</h2>{qs}")
        body = ((f"<p class='error'>{_e(error)}</p>" if error else "") +
                f"<form method='post' action='/p/{_e(p['code'])}/rate'>{''.join(blocks)}"
                "<button id='submit-answers' type='submit'>Submit my answers</button></form>")
        return render("Your ratings", body)

    @app.post("/p/{code}/rate")
    async def rate_post(code: str, request: Request):
        p, err = who(code)
        if err:
            return err
        f = await form(request)
        missing = [f"{i}-{j}-{c}" for i, j in pairs(p) for c in CRITERIA if f.get(f"{i}-{j}-{c}") not in
                   ("first", "second", "tie")]
        for i, j in pairs(p):  # each given answer is its own transaction, kept even if others are missing
            for c in CRITERIA:
                if (v := f.get(f"{i}-{j}-{c}")) in ("first", "second", "tie"):
                    store.add_answer(p["code"], p["order"][i], p["order"][j], c, v)
        if missing:
            return rate_page(code, error=f"Please answer every question ({len(missing)} left).")
        store.set_stage(p["code"], "done")
        return go(f"/p/{p['code']}/done")

    @app.get("/p/{code}/done", response_class=HTMLResponse)
    def done_page(code: str):
        p, err = who(code)
        if err:
            return err
        return render("Thank you", f"<p id='thanks'>Thank you! Your answers are saved under the code "
                      f"<strong>{_e(p['code'])}</strong>.</p>")

    return app
