"""The browser suite's fixtures: one gateway (and, for an older binary, the dev server in front of it)
and one headless Chromium for the session; `page` gives each test a clean tab (no key stored, desktop
size) and checks after it that the page threw no JavaScript error and that no request it made had a
key in its URL (Chrome's performance log: every Network.requestWillBeSent)."""

from __future__ import annotations

import json
import os
import shutil
import time
from decimal import Decimal
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from console_stack import ROOT, Stack, start_stack

CHROMIUM = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER_BIN", "/usr/bin/chromedriver")
SCREENSHOTS = ROOT / ".build" / "console-screenshots"
DOCS_SCREENSHOTS = ROOT / "docs" / "console"
DESKTOP = (1280, 800)
PHONE = (390, 844)


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Stack:
    stack = start_stack(tmp_path_factory.mktemp("console-gateway"))
    yield stack
    if stack.dev_server:
        stack.dev_server.stop()
    stack.gateway.kill()


@pytest.fixture(scope="session")
def driver(tmp_path_factory):
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists():
            pytest.fail(f"{path} is missing: apt-get install chromium chromium-driver", pytrace=False)
    downloads = tmp_path_factory.mktemp("downloads")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,800",
        "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
        "--disable-sync", "--disable-component-update", "--metrics-recording-only", "--lang=en-US",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads), "download.prompt_for_download": False,
    })
    service = Service(executable_path=CHROMEDRIVER, log_output=str(tmp_path_factory.mktemp("chromedriver") / "log"))
    browser = webdriver.Chrome(service=service, options=options)
    browser.downloads = downloads
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    yield browser
    browser.quit()


class Page:
    """The browser as a test uses it: open a route, find, type, wait, read, screenshot."""

    def __init__(self, driver, stack: Stack):
        self.driver = driver
        self.stack = stack
        self.network_urls: list[str] = []
        self.console: list[dict] = []

    # ---- navigation and size ----

    def open(self, route: str = "playground", reload: bool = True) -> None:
        """Loads the console at #/ROUTE (afresh; reload=False only changes the hash, as a link does)."""
        if reload:
            self.driver.get("about:blank")
            self.driver.get(f"{self.stack.origin}/#/{route}")
        else:
            self.js("location.hash = arguments[0]", f"#/{route}")
        self.wait(lambda: self.js("return document.documentElement.classList.contains('ready')"), what="the console to start")

    def viewport(self, size: tuple[int, int]) -> None:
        width, height = size
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600,
        })

    def js(self, script: str, *args):
        return self.driver.execute_script(script, *args)

    # ---- finding and typing ----

    def find(self, css: str, root=None):
        return (root or self.driver).find_element(By.CSS_SELECTOR, css)

    def finds(self, css: str, root=None):
        return (root or self.driver).find_elements(By.CSS_SELECTOR, css)

    def visible(self, css: str):
        """The first displayed element matching css, waiting for it."""
        found = []

        def shown():
            found[:] = [e for e in self.finds(css) if e.is_displayed()]
            return bool(found)

        self.wait(shown, what=f"{css} to be displayed")
        return found[0]

    def click(self, css: str) -> None:
        """Clicks the displayed, enabled element (found again if the page redrew it meanwhile)."""

        def clicked():
            element = self.visible(css)
            if not element.is_enabled():
                return False
            self.js("arguments[0].scrollIntoView({block: 'center'})", element)
            element.click()
            return True

        self.wait(clicked, what=f"{css} to be clicked")

    def type(self, css: str, text: str, clear: bool = True) -> None:
        element = self.visible(css)
        if clear:
            element.clear()
        element.send_keys(text)

    def text(self, css: str) -> str:
        try:
            return self.find(css).get_attribute("textContent") or ""
        except (WebDriverException, StaleElementReferenceException):
            return ""

    def paste_key(self, key: str, admin: bool = False) -> None:
        """Types a key into the visible key form and submits it (Enter), as a person pastes one."""
        field = self.visible(".keybar input[type=password]")
        field.send_keys(key + Keys.ENTER)
        self.wait(lambda: self.finds(".keybar .key-saved"), what="the key to be saved")

    def wait(self, condition, timeout: float = 20.0, what: str = "a condition", interval: float = 0.05):
        deadline = time.monotonic() + timeout
        last_error = None
        while time.monotonic() < deadline:
            try:
                value = condition()
                if value:
                    return value
            except (WebDriverException, StaleElementReferenceException) as error:
                last_error = error
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}" + (f" ({last_error})" if last_error else ""))

    # ---- the playground ----

    def send(self, text: str, with_enter: bool = True) -> None:
        box = self.visible("#pg-message")
        box.clear()
        if with_enter:
            box.send_keys(text + Keys.ENTER)
        else:
            box.send_keys(text)
            self.click("#pg-send")

    def choose_model(self, model: str, select: str = "#pg-model") -> None:
        self.wait(lambda: model in self.js(
            "return Array.from(document.querySelectorAll(arguments[0] + ' option')).map(o => o.value)", select),
            what=f"{model} in the model list")
        self.js("const s = document.querySelector(arguments[0]); s.value = arguments[1];"
                "s.dispatchEvent(new Event('change', {bubbles: true}))", select, model)

    def stat(self, name: str, pane: int = 0) -> str:
        return self.text(f".pane[data-pane='{pane}'] [data-stat='{name}']").strip()

    def reply(self, pane: int = 0) -> str:
        items = self.finds(f".pane[data-pane='{pane}'] .msg.assistant .msg-text")
        return (items[-1].get_attribute("textContent") or "") if items else ""

    def wait_settled(self, pane: int = 0, timeout: float = 30.0) -> None:
        """Until the pane shows its ledger row (status other than running)."""
        self.wait(lambda: self.stat("status", pane) not in ("", "—", "running"), timeout=timeout,
                  what=f"pane {pane}'s ledger row")

    def field(self, name: str, root: str = "") -> str:
        return self.text(f"{root} [data-field='{name}']".strip()).strip()

    # ---- logs ----

    def drain_logs(self) -> None:
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message.get("method") == "Network.requestWillBeSent":
                self.network_urls.append(message["params"]["request"]["url"])
                redirect = message["params"].get("redirectResponse")
                if redirect:
                    self.network_urls.append(redirect.get("url", ""))
            elif message.get("method") in ("Network.webSocketCreated", "Page.frameNavigated"):
                params = message["params"]
                self.network_urls.append(params.get("url") or params.get("frame", {}).get("url", ""))
        self.console.extend(self.driver.get_log("browser"))

    def screenshot(self, name: str) -> Path:
        """Saves the viewport as .build/console-screenshots/NAME.png; with CONSOLE_UPDATE_DOCS=1 also
        copies it to docs/console/ (the docs' screenshots), so an ordinary run leaves the tree clean."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        assert self.driver.save_screenshot(str(path)), f"no screenshot {path}"
        assert path.stat().st_size > 1000, f"the screenshot {path} is empty"
        if os.environ.get("CONSOLE_UPDATE_DOCS") == "1":
            DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, DOCS_SCREENSHOTS / path.name)
        return path

    def no_horizontal_scroll(self) -> None:
        widths = self.js("return [document.documentElement.scrollWidth, document.documentElement.clientWidth,"
                         " document.body.scrollWidth]")
        assert widths[0] <= widths[1] and widths[2] <= widths[1], f"the page scrolls sideways: {widths}"


@pytest.fixture
def page(driver, stack) -> Page:
    page = Page(driver, stack)
    page.viewport(DESKTOP)
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "light"}]})
    driver.get(stack.origin + "/")
    driver.execute_script("sessionStorage.clear(); localStorage.clear();")
    page.drain_logs()
    page.network_urls.clear()
    page.console.clear()
    yield page
    page.drain_logs()
    errors = [e for e in page.console if e.get("level") == "SEVERE" and e.get("source") != "network"]
    assert not errors, f"the page logged errors: {errors}"
    for url in page.network_urls:
        for secret in stack.secrets:
            assert secret not in url, f"a request URL carries a key: {url}"


def money(text: str) -> Decimal:
    return Decimal(text.strip())
