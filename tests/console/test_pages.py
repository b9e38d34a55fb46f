"""The console as a whole: every page loads with zero console errors; a screenshot of each page at
desktop (1280×800) and phone (390×844) width, with no sideways scrolling; dark mode; keys only in
sessionStorage and never in a URL; labels and focus; the security headers and a console/ that
keeps to the Content-Security-Policy (no inline script or style, no eval, no other host)."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from console_stack import ADMIN_KEY, CSP_DIRECTIVES, ROOT, http
from conftest import DESKTOP, PHONE

ROUTES = ["playground", "account", "admin"]


def store_keys(page, user_key: str | None, admin_key: str | None) -> None:
    page.open("playground")
    page.js("sessionStorage.clear();"
            "if (arguments[0]) sessionStorage.setItem('switchyard.key', arguments[0]);"
            "if (arguments[1]) sessionStorage.setItem('switchyard.adminKey', arguments[1]);", user_key, admin_key)


def wait_loaded(page, route: str) -> None:
    if route == "playground":
        page.wait(lambda: page.finds("#pg-model option[value=qwen]"), what="the models")
        page.wait(lambda: page.text("[data-fact=price]"), what="the model's price")
    elif route == "account":
        page.wait(lambda: page.field("balance"), what="the balance")
        page.wait(lambda: page.text("#acct-usage-totals"), what="the usage totals")
        page.wait(lambda: page.finds("#acct-usage-ledger table, #acct-usage-ledger .empty"), what="the ledger")
    else:
        page.wait(lambda: page.finds("#adm-accounts table"), what="the accounts")


@pytest.mark.parametrize("with_keys", [True, False], ids=["with-keys", "without-keys"])
def test_every_page_loads_with_zero_console_errors(page, stack, with_keys):
    account = stack.new_account("1.00")
    stack.chat(account.key, "quick")
    store_keys(page, account.key if with_keys else None, ADMIN_KEY if with_keys else None)
    page.drain_logs()
    page.console.clear()
    for route in ROUTES:
        page.open(route)
        if with_keys:
            wait_loaded(page, route)
            if route == "admin":
                for section in ("models", "usage", "engines"):
                    page.click(f"#adm-tab-{section}")
                    page.wait(lambda: page.finds(f"#adm-panel-{section} table, #adm-panel-{section} .empty"),
                              what=f"the {section} section")
        else:
            page.wait(lambda: page.finds(f"#view-{route} .alert.info"), what="the request for a key")
        page.drain_logs()
    problems = [e for e in page.console if e.get("level") in ("SEVERE", "WARNING")]
    assert not problems, f"console errors: {problems}"
    # Every request went to this origin (connect-src 'self'; nothing from anywhere else).
    origin = stack.origin
    foreign = [u for u in page.network_urls if not (u.startswith(origin) or u.startswith(("about:", "blob:", "data:")))]
    assert not foreign, foreign
    if with_keys:
        assert any(u.startswith(origin + "/v1/usage/summary") for u in page.network_urls)
        assert any(u == origin + "/admin/v1/models" for u in page.network_urls)


def showcase(stack):
    """An account with a few days' worth of requests to two models, for the screenshots."""
    account = stack.new_account("25.00", name="Acme Research")
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: stack.chat(account.key, "quick"), range(6)))
        list(pool.map(lambda _: stack.chat(account.key, "qwen"), range(3)))
        list(pool.map(lambda _: stack.chat(account.key, "yi-34b-t"), range(2)))
    return account


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_screenshots_of_every_page_and_no_sideways_scrolling(page, stack, size):
    name = "desktop" if size == DESKTOP else "phone"
    account = showcase(stack)
    page.viewport(size)
    store_keys(page, account.key, ADMIN_KEY)

    page.open("playground")
    wait_loaded(page, "playground")
    page.choose_model("qwen")
    page.type("#pg-system", "You are a concise assistant.")
    page.type("#pg-temperature", "0.7")
    page.send("What is Switchyard?")
    page.wait_settled()
    page.js("document.getElementById('pg-message').blur(); window.scrollTo(0, 0)")
    if name == "phone":
        page.js("document.getElementById('pg-panes').scrollIntoView()")
    page.no_horizontal_scroll()
    page.screenshot(f"playground-{name}")

    page.open("account")
    wait_loaded(page, "account")
    page.wait(lambda: page.finds("#acct-usage-chart svg.chart rect"), what="the chart")
    page.no_horizontal_scroll()
    page.screenshot(f"account-{name}")

    page.open("admin")
    wait_loaded(page, "admin")
    page.click(f"button[data-account='{account.id}']")
    page.wait(lambda: account.id in page.text("#adm-detail-h"), what="the account's page")
    if name == "phone":  # the account's own page, under the list
        page.js("document.getElementById('adm-account-detail').scrollIntoView()")
    else:
        page.js("window.scrollTo(0, 0)")
    page.no_horizontal_scroll()
    page.screenshot(f"admin-{name}")

    for section in ("models", "usage", "engines"):
        page.click(f"#adm-tab-{section}")
        page.wait(lambda: page.finds(f"#adm-panel-{section} table, #adm-panel-{section} .empty"), what=section)
        page.no_horizontal_scroll()

    if name == "desktop":  # the dark theme, for the docs
        page.open("playground")
        page.click("#theme-toggle")
        wait_loaded(page, "playground")
        page.click("#pg-tab-code")
        page.screenshot("playground-code-dark-desktop")
        page.click("#theme-toggle")


def test_dark_mode_follows_the_system_and_the_toggle_is_remembered(page, stack):
    page.driver.execute_cdp_cmd("Emulation.setEmulatedMedia",
                                {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    page.open("playground")
    theme = lambda: page.js("return document.documentElement.dataset.theme")  # noqa: E731
    background = lambda: page.js("return getComputedStyle(document.body).backgroundColor")  # noqa: E731
    assert theme() == "dark"
    dark = background()
    assert page.find("#theme-toggle").get_attribute("aria-pressed") == "true"
    page.click("#theme-toggle")
    assert theme() == "light" and background() != dark
    page.open("account")  # a reload: the choice is kept (localStorage), over the system's
    assert theme() == "light"
    assert page.js("return localStorage.getItem('switchyard.theme')") == "light"
    page.click("#theme-toggle")
    assert theme() == "dark" and background() == dark


def test_keys_live_in_session_storage_only(page, stack):
    account = stack.new_account("1.00")
    page.open("playground")
    page.paste_key(account.key)
    page.wait(lambda: page.finds("#pg-model option[value=qwen]"), what="the models")
    assert page.js("return sessionStorage.getItem('switchyard.key')") == account.key
    local = page.js("return Object.keys(localStorage).map(k => localStorage.getItem(k)).join(' ')")
    assert account.key not in local
    assert page.js("return document.cookie") == ""
    assert account.key not in page.js("return document.body.innerText")
    assert account.key[:10] in page.text(".keybar .key-prefix")
    page.click("[data-action=forget-key]")
    assert page.js("return sessionStorage.getItem('switchyard.key')") is None
    page.visible(".keybar input[type=password]")


def test_every_control_has_a_label_and_focus_is_visible(page, stack):
    account = stack.new_account("1.00")
    store_keys(page, account.key, ADMIN_KEY)
    for route in ROUTES:
        page.open(route)
        wait_loaded(page, route)
        if route == "admin":
            page.click(f"button[data-account='{account.id}']")
            page.wait(lambda: page.finds("#adm-keys"), what="the account's page")
        unlabelled = page.js("""
            const name = el => (el.labels && el.labels.length) || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby');
            return Array.from(document.querySelectorAll('input, select, textarea'))
              .filter(el => el.offsetParent !== null && el.type !== 'hidden' && !name(el)).map(el => el.outerHTML);""")
        assert not unlabelled, f"{route}: controls without a label: {unlabelled}"
        nameless = page.js("""
            return Array.from(document.querySelectorAll('button, a[href]'))
              .filter(el => el.offsetParent !== null && !(el.textContent.trim() || el.getAttribute('aria-label')))
              .map(el => el.outerHTML);""")
        assert not nameless, f"{route}: buttons or links without a name: {nameless}"
        assert not page.finds("[onclick], [onload], [style]"), f"{route}: inline handlers or styles"
    # Keyboard focus is drawn (an outline), on a button as on a field.
    page.open("playground")
    wait_loaded(page, "playground")
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    page.find("#pg-message").click()
    ActionChains(page.driver).send_keys(Keys.TAB).perform()
    focused = page.js("const el = document.activeElement; const s = getComputedStyle(el);"
                      "return [el.id, s.outlineStyle, s.outlineWidth]")
    assert focused[0] == "pg-send" and focused[1] != "none" and focused[2] != "0px", focused


def test_security_headers_and_content_types(stack):
    for path, content_type in [("/", "text/html"), ("/console/app.js", "text/javascript"),
                               ("/console/console.css", "text/css"), ("/console/favicon.svg", "image/svg+xml")]:
        status, headers, _ = http("GET", stack.origin + path)
        headers = {k.lower(): v for k, v in headers.items()}
        assert status == 200, path
        assert headers["content-type"].startswith(content_type), (path, headers)
        policy = {d.strip() for d in headers["content-security-policy"].split(";")}
        assert CSP_DIRECTIVES <= policy, (path, policy)
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
    status, _, _ = http("GET", stack.origin + "/console/../Package.swift")
    assert status == 404


def test_the_console_files_keep_to_the_policy():
    console = ROOT / "console"
    html = (console / "index.html").read_text()
    assert re.search(r'<script type="module" src="/console/app\.js"></script>', html)
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "inline script"
    assert "<style" not in html and not re.search(r"\sstyle\s*=", html), "inline style"
    assert not re.search(r"\son[a-z]+\s*=", html), "inline event handler"
    for attr in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert attr.startswith(("/console/", "#")), f"asset not under /console/: {attr}"
    for path in console.rglob("*.js"):
        text = path.read_text()
        for bad in ("eval(", "new Function", "innerHTML", "outerHTML", "insertAdjacentHTML", "document.write",
                    "setAttribute(\"style\"", "localStorage.setItem(KEY", "@import"):
            assert bad not in text, f"{path.name}: {bad}"
        # Nothing is logged (a key could be in it); code samples quote console.log in strings.
        assert not re.search(r"(?<![\"'`])console\.(log|info|debug|warn|error)\(", text), f"{path.name}: console logging"
        for url in re.findall(r"https?://[^\s\"'`)]+", text):
            assert url == "http://www.w3.org/2000/svg", f"{path.name}: a URL of another host: {url}"
        for spec in re.findall(r'(?:import|from)\s*\(?\s*"([^"]+)"', text):
            assert spec.startswith("/console/"), f"{path.name}: a module not under /console/: {spec}"
    css = (console / "console.css").read_text()
    assert "@import" not in css and "@font-face" not in css and not re.search(r"url\((?!\s*['\"]?(data:|/console/))", css)


def test_keys_travel_only_in_the_authorization_header(page, stack):
    """Every request of a whole session — playground (stream, stop), account (chart, ledger, CSV) and
    operator (every section) — seen in Chrome's performance log: no URL holds a key; the API calls
    carry it as `Authorization: Bearer`, and the admin key goes only to /admin."""
    import json

    from selenium.webdriver.common.keys import Keys

    account = stack.new_account("2.00")
    page.open("playground")
    page.paste_key(account.key)
    page.choose_model("slow-model")
    page.send("Hello")
    page.wait(lambda: len(page.reply()) > 20, what="the reply")
    page.find("#pg-message").send_keys(Keys.ESCAPE)
    page.wait(lambda: page.stat("end-reason") == "cancelled", what="the stop")
    page.wait_settled()
    page.open("account", reload=False)
    page.wait(lambda: page.finds("#acct-usage-ledger table"), what="the ledger")
    page.click("#acct-usage-csv")
    page.open("admin", reload=False)
    page.paste_key(ADMIN_KEY, admin=True)
    for section in ("accounts", "models", "usage", "engines"):
        page.click(f"#adm-tab-{section}")
        page.wait(lambda: page.finds(f"#adm-panel-{section} table, #adm-panel-{section} .empty"), what=section)

    requests = []
    for entry in page.driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            requests.append(message["params"]["request"])
    page.network_urls.extend(r["url"] for r in requests)
    api = [r for r in requests if any(p in r["url"] for p in ("/v1/", "/admin/v1/"))]
    assert len(api) >= 10, [r["url"] for r in requests]
    for request in requests:
        assert account.key not in request["url"] and ADMIN_KEY not in request["url"], request["url"]
        assert account.key not in request.get("postData", "") and ADMIN_KEY not in request.get("postData", "")
    for request in api:
        auth = {k.lower(): v for k, v in request["headers"].items()}.get("authorization")
        want = ADMIN_KEY if "/admin/v1/" in request["url"] else account.key
        assert auth == f"Bearer {want}", (request["url"], auth)
    assert any("/cancel" in r["url"] for r in api), "Stop did not call the cancel API"
    assert any("format=csv" in r["url"] for r in api), "the CSV was not fetched"
