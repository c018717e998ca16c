"""Open an HTML output in headless Chromium with the network blocked.

Used by the tests (and by anyone checking a report by hand) to prove that
``karte.html`` / ``bericht.html`` load nothing from any host: every request
the page makes is recorded from Chromium's DevTools performance log, and all
non-``file:``/``data:`` requests are blocked three ways (DevTools
``Network.setBlockedURLs``, a host resolver that resolves nothing, and a proxy
on a closed local port), so a forgotten CDN link shows up as a recorded,
failed request instead of silently working on a connected machine.

Needs the Debian packages ``chromium`` and ``chromium-driver``
(``/usr/bin/chromium``, ``/usr/bin/chromedriver``) and the Python package
``selenium``. Selenium Manager is never asked to download anything.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Browser", "BrowserResult", "axe_violations", "chromium_available", "open_offline", "CHROMIUM",
           "CHROMEDRIVER"]

CHROMIUM = os.environ.get("GEOPLAN_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("GEOPLAN_CHROMEDRIVER", "/usr/bin/chromedriver")

_BLOCK_PATTERNS = ["http://*", "https://*", "ws://*", "wss://*", "ftp://*", "*://*:*"]


@dataclass
class BrowserResult:
    """What happened while the page loaded.

    ``requests``: every URL the page requested (document, scripts, styles,
    images, fonts, XHR …), in order, including blocked ones; ``failed``: URLs
    whose load failed; ``dom_counts``: number of elements per CSS selector
    asked for; ``console_errors``: SEVERE browser-console messages;
    ``screenshot``: path of the PNG written, if any; ``title``: document title.
    """

    requests: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    dom_counts: dict[str, int] = field(default_factory=dict)
    console_errors: list[str] = field(default_factory=list)
    screenshot: Path | None = None
    title: str = ""

    def external_requests(self, allowed_dir: str | Path) -> list[str]:
        """Requests that are neither ``data:``/``blob:``/``about:`` nor ``file://`` under ``allowed_dir``."""
        base = Path(allowed_dir).resolve()
        bad = []
        for url in self.requests:
            if url.startswith(("data:", "blob:", "about:")):
                continue
            if url.startswith("file://"):
                from urllib.parse import unquote, urlparse

                p = Path(unquote(urlparse(url).path)).resolve()
                if p == base or base in p.parents:
                    continue
            bad.append(url)
        return bad


def chromium_available() -> bool:
    """True when Chromium, chromedriver and selenium are all installed."""
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        return False
    if not (Path(CHROMEDRIVER).is_file() and os.access(CHROMEDRIVER, os.X_OK)):
        return False
    try:
        import selenium  # noqa: F401
    except ImportError:
        return False
    return True


def _options(user_dir: str, window_size: tuple[int, int]):
    from selenium.webdriver.chrome.options import Options

    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-quic",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--disable-domain-reliability",
        "--disable-client-side-phishing-detection",
        "--metrics-recording-only",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        f"--window-size={window_size[0]},{window_size[1]}",
        f"--user-data-dir={user_dir}",
        # Nothing resolves and everything proxied goes to a closed port.
        '--host-resolver-rules=MAP * ~NOTFOUND',
        "--proxy-server=127.0.0.1:9",
        "--proxy-bypass-list=<-loopback>",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    return opts


def _collect(driver) -> tuple[list[str], list[str]]:
    requests: list[str] = []
    failed_ids: set[str] = set()
    id_url: dict[str, str] = {}
    for entry in driver.get_log("performance"):
        try:
            msg = json.loads(entry["message"])["message"]
        except (KeyError, ValueError):
            continue
        method = msg.get("method", "")
        params = msg.get("params", {})
        if method == "Network.requestWillBeSent":
            url = params.get("request", {}).get("url", "")
            requests.append(url)
            id_url[params.get("requestId", "")] = url
        elif method == "Network.loadingFailed":
            failed_ids.add(params.get("requestId", ""))
    failed = [id_url[i] for i in failed_ids if i in id_url]
    return requests, sorted(failed)


class Browser:
    """One headless Chromium (with chromedriver) for several pages, the network blocked as in
    :func:`open_offline`.

    Starting Chromium costs seconds of CPU; checking many pages, pass one ``Browser`` to
    :func:`open_offline` / :func:`axe_violations` (``browser=``) instead of a new browser per page.
    Each page still loads in a new tab (the previous tab is closed, its logs dropped), with the cache
    disabled and external URLs blocked in that tab. Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, window_size: tuple[int, int] = (1200, 900)):
        if not chromium_available():
            raise RuntimeError(
                f"Chromium/chromedriver fehlen ({CHROMIUM}, {CHROMEDRIVER}) oder selenium ist nicht installiert.")
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        # Selenium Manager must not try to download a driver or browser.
        os.environ.setdefault("SE_OFFLINE", "true")
        self.window_size = tuple(window_size)
        self._user_dir = tempfile.mkdtemp(prefix="geoplan-chromium-")
        self.driver = None
        self._pages = 0
        try:
            self.driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER),
                                           options=_options(self._user_dir, self.window_size))
        except BaseException:
            self.close()
            raise

    def new_page(self, window_size: tuple[int, int], timeout: float):
        """A fresh blank tab (the previous one closed), logs drained, the network blocked; returns the driver."""
        driver = self.driver
        if driver is None:
            raise RuntimeError("Der Browser ist schon geschlossen.")
        if self._pages:
            old = driver.current_window_handle
            driver.switch_to.new_window("tab")
            new = driver.current_window_handle
            driver.switch_to.window(old)
            driver.close()
            driver.switch_to.window(new)
        self._pages += 1
        if tuple(window_size) != self.window_size:
            driver.set_window_size(*window_size)
            self.window_size = tuple(window_size)
        driver.set_page_load_timeout(timeout)
        driver.set_script_timeout(timeout)
        # Start from a blank page and drop what earlier pages and the browser's own start page logged.
        driver.get("about:blank")
        driver.get_log("performance")
        driver.get_log("browser")
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": _BLOCK_PATTERNS})
        driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
        return driver

    def close(self) -> None:
        if self.driver is not None:
            self.driver.quit()
            self.driver = None
        shutil.rmtree(self._user_dir, ignore_errors=True)

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_offline(
    path: str | Path,
    screenshot: str | Path | None = None,
    wait_js: str | None = None,
    *,
    selectors: tuple[str, ...] = ("path.leaflet-interactive",),
    timeout: float = 20.0,
    settle: float = 0.5,
    window_size: tuple[int, int] = (1200, 900),
    browser: Browser | None = None,
) -> BrowserResult:
    """Load ``path`` in headless Chromium with the network blocked.

    ``wait_js`` is a JavaScript expression (``return …``) polled until truthy
    (at most ``timeout`` s) before counting; after it, the page gets ``settle``
    seconds for late requests. ``selectors`` are counted with
    ``querySelectorAll``. A screenshot is saved when ``screenshot`` is given.
    ``browser``: a running :class:`Browser` to use (a new tab); without it a
    Chromium is started for this page and ended after it.
    """
    if browser is None:
        with Browser(window_size) as own:
            return open_offline(path, screenshot, wait_js, selectors=selectors, timeout=timeout, settle=settle,
                                window_size=window_size, browser=own)
    path = Path(path).resolve()
    driver = browser.new_page(window_size, timeout)
    driver.get(path.as_uri())
    if wait_js:
        deadline = time.monotonic() + timeout
        while not driver.execute_script(wait_js):
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
    time.sleep(settle)
    counts = {
        sel: int(driver.execute_script("return document.querySelectorAll(arguments[0]).length;", sel))
        for sel in selectors
    }
    shot = None
    if screenshot is not None:
        shot = Path(screenshot)
        shot.parent.mkdir(parents=True, exist_ok=True)
        shot.write_bytes(driver.get_screenshot_as_png())
    title = driver.title
    requests, failed = _collect(driver)
    errors = [e.get("message", "") for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    return BrowserResult(
        requests=requests, failed=failed, dom_counts=counts, console_errors=errors, screenshot=shot, title=title
    )


def axe_violations(
    path: str | Path,
    axe_js: str | Path,
    *,
    tags: tuple[str, ...] = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa"),
    wait_js: str | None = None,
    timeout: float = 30.0,
    window_size: tuple[int, int] = (1024, 900),
    browser: Browser | None = None,
) -> list[dict]:
    """Run axe-core (``axe_js``: the ``axe.min.js`` of the npm package) on ``path``; return its violations.

    Each violation is axe's dict (``id``, ``impact``, ``help``, ``nodes`` with
    ``target`` and ``failureSummary``). The page loads with the network blocked
    as in :func:`open_offline`; ``browser`` as there.
    """
    if browser is None:
        with Browser(window_size) as own:
            return axe_violations(path, axe_js, tags=tags, wait_js=wait_js, timeout=timeout,
                                  window_size=window_size, browser=own)
    source = Path(axe_js).read_text(encoding="utf-8")
    driver = browser.new_page(window_size, timeout)
    driver.get(Path(path).resolve().as_uri())
    if wait_js:
        deadline = time.monotonic() + timeout
        while not driver.execute_script(wait_js) and time.monotonic() < deadline:
            time.sleep(0.1)
    driver.execute_script(source)
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {runOnly: {type: 'tag', values: arguments[0]}, resultTypes: ['violations']})"
        ".then(r => done(r.violations)).catch(e => done([{id: 'axe-error', help: String(e), nodes: []}]));",
        list(tags),
    )
    return list(result)
