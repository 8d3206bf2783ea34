"""The browser console (console/) on the session's local stack: the adapter's CORS preflights and
static files, then the page itself in headless Chromium (Debian's /usr/bin/chromium, driven by
Playwright through `executable_path`; nothing downloads a browser).

The page is loaded from http://localhost:PORT/console/ while it calls the API at
http://127.0.0.1:PORT/v1: another origin, so every call goes through CORS as it would against a
deployed API (preflight without a key, Access-Control-Allow-Origin on answers and on API
Gateway's own errors). Without chromium these tests fail, they are never skipped:
`make install-browser` (a prerequisite of `make test`) installs it."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from local.aws.apigw import console_csp, console_csp_text
from local.stack import LocalStack
from tests.images import png
from tests.integration.conftest import ALICE_KEY, BOB_KEY, ApiClient
from tests.templates import source_template

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = ROOT / ".local" / "console.png"
T2V = "kling-video/v1.6/standard/text-to-video"


def root_url(local_stack: LocalStack, host: str = "127.0.0.1") -> str:
    return f"http://{host}:{urlsplit(local_stack.api_url).port}"


# ---------------------------------------------------------------------------------------------
# the adapter: preflights like API Gateway with the template's Cors, and the console's files


def test_preflight_is_answered_without_a_key(local_stack: LocalStack) -> None:
    for path in ("/v1/generations", "/v1/generations/gen_x", "/models"):
        answer = requests.options(
            root_url(local_stack) + path,
            headers={
                "Origin": "http://localhost:8000",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,idempotency-key,x-api-key",
            },
            timeout=10,
        )
        assert answer.status_code == 200, (path, answer.text)
        assert answer.headers["Access-Control-Allow-Origin"] == "*"
        allowed = {h.strip().lower() for h in answer.headers["Access-Control-Allow-Headers"].split(",")}
        assert {"x-api-key", "idempotency-key", "content-type"} <= allowed
        assert {"GET", "POST", "DELETE"} <= set(answer.headers["Access-Control-Allow-Methods"].split(","))
    # no such resource: API Gateway's missing-token answer, as for any other method
    assert requests.options(root_url(local_stack) + "/v1/nope", timeout=10).status_code == 404


def test_answers_and_gateway_errors_carry_the_allowed_origin(
    local_stack: LocalStack, api: ApiClient, api_client: Any
) -> None:
    origin = {"Origin": "http://localhost:8000"}
    ok = api.get("/models", headers=origin)
    assert ok.status_code == 200 and ok.headers["Access-Control-Allow-Origin"] == "*"
    refused = api_client("not-a-key").get("/models", headers=origin)  # answered by "API Gateway"
    assert refused.status_code == 403 and refused.headers["Access-Control-Allow-Origin"] == "*"
    missing = api.get("/generations/gen_nope", headers=origin)  # answered by the function
    assert missing.status_code == 404 and missing.headers["Access-Control-Allow-Origin"] == "*"


def test_the_console_is_served_without_a_key(local_stack: LocalStack) -> None:
    base = root_url(local_stack)
    home = requests.get(base + "/", allow_redirects=False, timeout=10)
    assert home.status_code == 302 and home.headers["Location"] == "/console/"
    page = requests.get(base + "/console/", timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "videogen console" in page.text
    # the template's policy (what CloudFront sends in AWS), with this stack's API and S3 origins
    port = urlsplit(local_stack.api_url).port
    expected = console_csp(
        console_csp_text(source_template()["Resources"]),
        api_origin=f"http://127.0.0.1:{port} http://localhost:{port}",
        video_origins=local_stack.aws_endpoint_url,
    )
    assert page.headers["Content-Security-Policy"] == expected
    policy = {name: set(values) for name, *values in (d.split() for d in expected.split(";"))}
    assert policy["connect-src"] == {"'self'", f"http://127.0.0.1:{port}", f"http://localhost:{port}"}
    assert policy["frame-ancestors"] == {"'none'"} and policy["script-src"] == {"'self'"}
    # config.json, as make deploy-console writes it: the API on the host the page came from
    config = requests.get(root_url(local_stack, "localhost") + "/console/config.json", timeout=10)
    assert config.json() == {"apiUrl": root_url(local_stack, "localhost") + "/v1"}
    forged = requests.get(base + "/console/config.json", headers={"Host": "evil.example"}, timeout=10)
    assert forged.json() == {"apiUrl": f"http://127.0.0.1:{port}/v1"}
    script = requests.get(base + "/console/console.js", timeout=10)
    assert script.status_code == 200 and script.headers["Content-Type"].startswith("text/javascript")
    for path in ("/console/../template.yaml", "/console/%2e%2e/template.yaml", "/console/nope.js"):
        assert requests.get(base + path, timeout=10).status_code == 404, path


# ---------------------------------------------------------------------------------------------
# the page in headless Chromium


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: run `make install-browser` (make test does)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, local_stack: LocalStack) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(30_000)
    problems: list[str] = []
    tab.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    tab.on("console", lambda m: problems.append(f"{m.text} {m.location}") if m.type == "error" else None)
    tab.problems = problems
    # Content-Security-Policy violations, whatever level Chromium logs them at, and as the
    # document's own securitypolicyviolation events (read with csp_violations(tab))
    tab.csp_messages = csp_messages = []
    tab.on("console", lambda m: csp_messages.append(m.text) if "Content Security Policy" in m.text else None)
    tab.add_init_script(
        """window.cspViolations = [];
        document.addEventListener("securitypolicyviolation",
          e => window.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));"""
    )
    yield tab
    context.close()


def csp_violations(page: Any) -> list[str]:
    return [*page.csp_messages, *page.evaluate("window.cspViolations || []")]


def open_console(page: Any, local_stack: LocalStack, key: str) -> None:
    """Load the page from another origin than the API's, connect it with `key`."""
    page.goto(root_url(local_stack, "localhost") + "/")  # redirects to /console/
    assert page.url.endswith("/console/")
    # the default API URL is the page's own origin (what `make local` serves)
    assert page.input_value("#api-url") == root_url(local_stack, "localhost") + "/v1"
    page.fill("#api-url", local_stack.api_url)  # http://127.0.0.1:PORT/v1: cross-origin
    page.fill("#api-key", key)
    page.click("#connect")


def record_statuses(page: Any) -> None:
    page.evaluate(
        """() => {
          window.seenStatuses = [];
          const badge = document.getElementById("current-status");
          new MutationObserver(() => {
            const s = badge.dataset.status;
            if (s && window.seenStatuses.at(-1) !== s) window.seenStatuses.push(s);
          }).observe(badge, {attributes: true, childList: true, characterData: true, subtree: true});
        }"""
    )


def wait_for_playable_video(page: Any, selector: str) -> dict[str, Any]:
    page.wait_for_selector(selector)
    page.wait_for_function(
        "sel => { const v = document.querySelector(sel); return v && v.readyState >= 1 && v.duration > 0; }",
        arg=selector,
    )
    return dict(
        page.eval_on_selector(
            selector, "v => ({src: v.src, readyState: v.readyState, duration: v.duration, error: v.error})"
        )
    )


def test_a_generation_from_the_page_to_a_playing_video(
    page: Any, local_stack: LocalStack, api: ApiClient, poller: None
) -> None:
    open_console(page, local_stack, ALICE_KEY)
    page.wait_for_selector(f'#model option[value="{T2V}"]', state="attached")
    assert "connected to" in page.text_content("#connection")

    page.select_option("#model", T2V)
    # the model's fields from GET /models: enums become selects, the prompt a text area
    assert page.eval_on_selector("#field-duration", "e => e.tagName") == "SELECT"
    assert page.eval_on_selector("#field-prompt", "e => e.tagName") == "TEXTAREA"
    page.fill("#field-prompt", "A red fox runs through snow at dawn")
    page.select_option("#field-duration", label="5")
    page.select_option("#field-aspect_ratio", label="16:9")
    record_statuses(page)
    page.click("#submit")

    page.wait_for_selector('#current-status[data-status="completed"]')
    seen = page.evaluate("window.seenStatuses")
    assert seen[0] in ("pending", "queued", "generating") and seen[-1] == "completed", seen
    assert "took" in page.text_content("#current-elapsed")
    generation_id = page.text_content("#current-id")
    video = wait_for_playable_video(page, "#current-player")
    assert video["error"] is None and video["readyState"] >= 1 and video["duration"] > 0

    # the player's source is the presigned link of the archived MP4
    fetched = requests.get(video["src"], timeout=10)
    assert fetched.status_code == 200 and fetched.headers["Content-Type"] == "video/mp4"
    assert fetched.content[4:8] == b"ftyp"
    record = api.get(f"/generations/{generation_id}").json()
    assert record["status"] == "completed"
    assert record["request"] == {
        "prompt": "A red fox runs through snow at dawn",
        "duration": 5,
        "aspect_ratio": "16:9",
    }

    # the list of recent generations has it, with a player
    page.wait_for_selector(f'#recent-list li[data-id="{generation_id}"] video')
    wait_for_playable_video(page, f'#recent-list video[data-id="{generation_id}"]')
    assert page.problems == [] and csp_violations(page) == []  # the API and the local S3 link allowed
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)


def completed_ids(client: ApiClient) -> list[str]:
    """The key's completed generations, newest first, as GET /generations lists them."""
    ids: list[str] = []
    token = None
    while True:
        params = {"status": "completed", "limit": "100", **({"next_token": token} if token else {})}
        page = client.get("/generations", params=params).json()
        ids += [item["id"] for item in page["items"]]
        token = page.get("next_token")
        if not token:
            return ids


def gallery_ids(page: Any) -> list[str]:
    return list(page.eval_on_selector_all("#gallery-grid figure", "fs => fs.map(f => f.dataset.id)"))


def test_the_gallery_pages_through_the_keys_finished_videos(
    page: Any, local_stack: LocalStack, other_api: ApiClient, poller: None, wait_for: Any
) -> None:
    created = [
        other_api.post("/generations", json={"model": "video-01", "prompt": f"gallery {n}"}).json()["id"]
        for n in range(10)
    ]
    wait_for(
        lambda: all(other_api.get(f"/generations/{i}").json()["status"] == "completed" for i in created),
        timeout=60,
    )
    finished = completed_ids(other_api)  # this key's only: another key's videos never show
    assert set(created) <= set(finished) and len(finished) >= 10

    open_console(page, local_stack, BOB_KEY)
    page.wait_for_selector("#gallery-grid figure")
    assert gallery_ids(page) == finished[:9]  # one page, newest first
    assert page.is_visible("#gallery-more")
    page.click("#gallery-more")
    page.wait_for_function(
        "n => document.querySelectorAll('#gallery-grid figure').length >= n", arg=min(18, len(finished))
    )
    assert gallery_ids(page) == finished[:18]
    assert page.is_visible("#gallery-more") == (len(finished) > 18)
    # each card plays its presigned link and offers it for download
    newest = finished[0]
    video = wait_for_playable_video(page, f'#gallery-grid video[data-id="{newest}"]')
    href = page.get_attribute(f'#gallery-grid figure[data-id="{newest}"] a', "href")
    assert href == video["src"] and requests.get(href, timeout=10).content[4:8] == b"ftyp"
    assert "gallery" in page.text_content(f'#gallery-grid figure[data-id="{newest}"] figcaption')
    assert page.problems == [] and csp_violations(page) == []  # under the template's CSP header


def test_a_large_image_is_downscaled_under_the_inline_limit(
    page: Any, local_stack: LocalStack, api: ApiClient, poller: None, tmp_path: Path
) -> None:
    big = tmp_path / "big.png"
    big.write_bytes(png(640, 480, noise=True))
    assert big.stat().st_size > 256 * 1024
    open_console(page, local_stack, ALICE_KEY)
    page.wait_for_selector('#model option[value="video-01"]', state="attached")
    page.select_option("#model", "video-01")
    page.set_input_files("#file-image_url", str(big))
    page.wait_for_selector('img[data-preview="image_url"]')
    assert "downscaled" in page.text_content("#hint-image_url")
    page.fill("#field-prompt", "The picture comes alive")
    page.click("#submit")
    page.wait_for_selector('#current-status[data-status="completed"]')

    record = api.get(f"/generations/{page.text_content('#current-id')}").json()
    header, _, data = record["request"]["image_url"].partition(",")
    assert header == "data:image/jpeg;base64"
    assert len(base64.b64decode(data)) <= 256 * 1024
    assert page.problems == [] and csp_violations(page) == []  # the data: preview allowed


def test_api_errors_are_shown_with_their_message(page: Any, local_stack: LocalStack) -> None:
    open_console(page, local_stack, "not-a-key")  # refused by "API Gateway", cross-origin
    page.wait_for_selector("#error:not([hidden])")
    assert "invalid_api_key" in page.text_content("#error")
    assert "a valid x-api-key header is required" in page.text_content("#error")

    page.fill("#api-key", ALICE_KEY)
    page.click("#connect")
    page.wait_for_selector("#create:not([hidden])")
    page.select_option("#model", T2V)
    page.fill("#field-prompt", "x")
    page.fill("#field-cfg_scale", "7")  # the catalog says 0..1: the API names the field
    page.eval_on_selector("#field-cfg_scale", "e => e.removeAttribute('max')")  # past the browser's check
    page.click("#submit")
    page.wait_for_selector("#error:not([hidden])")
    text = page.text_content("#error")
    assert "HTTP 422" in text and "cfg_scale" in text, text


# ---------------------------------------------------------------------------------------------
# the page's Content-Security-Policy (a meta element: it also applies opened from disk)

CSP = {
    "default-src": {"'self'"},
    "script-src": {"'self'"},
    "style-src": {"'self'"},
    "img-src": {"'self'", "data:"},
    "media-src": {"'self'", "https:", "http://127.0.0.1:*", "http://localhost:*"},
    "connect-src": {"'self'", "https:", "http://127.0.0.1:*", "http://localhost:*"},
    "object-src": {"'none'"},
    "base-uri": {"'none'"},
    "form-action": {"'none'"},
}


def page_policy(page: Any) -> dict[str, set[str]]:
    content = page.get_attribute('meta[http-equiv="Content-Security-Policy"]', "content")
    assert content, "no Content-Security-Policy meta element"
    directives = [d.split() for d in content.split(";") if d.strip()]
    return {name: set(values) for name, *values in directives}


def test_the_console_has_no_inline_code_or_styles() -> None:
    html = (ROOT / "console" / "index.html").read_text()
    script = (ROOT / "console" / "console.js").read_text()
    assert "<style" not in html and " style=" not in html and "<script>" not in html
    assert not re.search(r"\son[a-z]+=", html), "inline event handler"
    assert not re.search(
        r"\b(eval|innerHTML|outerHTML|insertAdjacentHTML)\b|new Function|setAttribute\(.style", script
    )


@pytest.mark.parametrize("served", ["by the local stack", "from disk"])
def test_the_page_runs_under_its_content_security_policy(
    page: Any, local_stack: LocalStack, tmp_path: Path, served: str
) -> None:
    if served == "by the local stack":
        open_console(page, local_stack, ALICE_KEY)
    else:  # no header at all: the meta element alone, the origin "null"
        page.goto((ROOT / "console" / "index.html").as_uri())
        page.fill("#api-url", local_stack.api_url)
        page.fill("#api-key", ALICE_KEY)
        page.click("#connect")
    assert page_policy(page) == CSP
    page.wait_for_selector(f'#model option[value="{T2V}"]', state="attached")  # connect-src
    page.select_option("#model", "video-01")
    small = tmp_path / "small.png"
    small.write_bytes(png(32, 32))
    page.set_input_files("#file-image_url", str(small))
    page.wait_for_selector('img[data-preview="image_url"]')  # img-src data:
    assert page.eval_on_selector("body", "b => getComputedStyle(b).margin") == "0px"  # console.css applied
    assert page.problems == [] and csp_violations(page) == []

    # the policy is enforced, and a violation would be seen: injected inline code does not run
    page.evaluate(
        """() => { const s = document.createElement("script");
                   s.textContent = "window.inlineRan = true"; document.body.append(s); }"""
    )
    page.wait_for_function("window.cspViolations.length > 0")
    assert page.evaluate("window.inlineRan") is None
    assert any("script-src" in v for v in csp_violations(page))


def test_the_console_lists_batches_and_follows_their_progress(
    page: Any, local_stack: LocalStack, other_api: ApiClient, poller: None
) -> None:
    items = [{"model": T2V, "prompt": f"console batch {n}"} for n in range(3)] + [{"model": "nope"}]
    created = other_api.post("/batches", json={"items": items}).json()
    open_console(page, local_stack, BOB_KEY)
    row = f'#batch-list li[data-id="{created["id"]}"]'
    page.wait_for_selector(row)
    assert "3 lines" in page.text_content(row) and "+1 invalid" in page.text_content(row)
    # a running batch refreshes by itself until it has ended
    page.wait_for_selector(f"{row} .status.completed", timeout=90_000)
    assert page.evaluate(f"document.querySelector('{row} progress').value") == 1
    assert "completed 3" in page.text_content(f"{row} .counts")
    assert page.problems == [] and csp_violations(page) == []


def test_a_batch_is_cancelled_from_the_console(
    page: Any, local_stack: LocalStack, other_api: ApiClient
) -> None:
    created = other_api.post(
        "/batches", json={"items": [{"model": T2V, "prompt": "cancel from console"}]}
    ).json()
    open_console(page, local_stack, BOB_KEY)
    row = f'#batch-list li[data-id="{created["id"]}"]'
    page.wait_for_selector(f"{row} button")
    page.click(f"{row} button")
    page.wait_for_function(
        "id => ['cancelling', 'cancelled'].includes("
        'document.querySelector(`#batch-list li[data-id="${id}"] .status`).textContent)',
        arg=created["id"],
    )
    assert other_api.get(f"/batches/{created['id']}").json()["status"] in ("cancelling", "cancelled")
    assert page.problems == [] and csp_violations(page) == []
