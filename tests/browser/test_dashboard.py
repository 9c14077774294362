"""The web dashboard in a real browser: Debian's chromium, headless, driven
over WebDriver (Selenium and chromium-driver), against a release server of
the digits zoo (``$EMBEDEVAL_BIN``, default ``target/release/embedeval``).

Every page loads with no console error (a Content-Security-Policy breach is
one); the comparison table's numbers are GetComparison's; sorting a column
reorders the rows; hovering a point shows its tooltip; an evaluation started
during the test shows its progress rising and ends COMPLETED without a
reload; a class named like HTML is shown as text and opens no dialog; with a
token, a page without it gets the sign-in page, a wrong token is refused and
the right one signs in. Skipped, loudly, where chromium or chromium-driver
is missing, unless ``EMBEDEVAL_REQUIRE_BROWSER=1``.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator, List

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("EMBEDEVAL_BIN", REPO / "target" / "release" / "embedeval"))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
HOSTILE = "<img src=x onerror=alert(1)>"
SHOTS = Path(os.environ["EMBEDEVAL_SCREENSHOTS"]) if os.environ.get("EMBEDEVAL_SCREENSHOTS") else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A release server of the zoo with its dashboard."""

    def __init__(self, tmp: Path, extra: List[str]) -> None:
        if not BIN.is_file():
            pytest.fail(f"no embedeval binary at {BIN} (set EMBEDEVAL_BIN)")
        self.port, web = _free_port(), _free_port()
        self.grpc = f"http://127.0.0.1:{self.port}"
        self.web = f"http://127.0.0.1:{web}"
        datasets = tmp / "datasets"
        hostile = datasets / "hostile"
        hostile.mkdir(parents=True)
        digits = REPO / "datasets" / "digits"
        (datasets / "digits").symlink_to(digits)
        for f in ("test_images.npy", "test_labels.npy", "train_images.npy", "train_labels.npy"):
            shutil.copy(digits / f, hostile / f)
        names = json.dumps([HOSTILE] + [str(i) for i in range(1, 10)])
        manifest = (digits / "dataset.toml").read_text().replace('name = "digits"', 'name = "hostile"')
        manifest = manifest.replace("num_classes = 10", f"num_classes = 10\nclass_names = {names}")
        (hostile / "dataset.toml").write_text(manifest)
        self.log = tmp / "server.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("EMBEDEVAL_")}
        env["EMBEDEVAL_LOG"] = "warn"
        cmd = [str(BIN), "serve", "--addr", f"127.0.0.1:{self.port}", "--http-addr", f"127.0.0.1:{web}",
               "--models-dir", str(REPO / "models"), "--datasets-dir", str(datasets),
               "--data-dir", str(tmp / "data"), "--shutdown-grace", "1s", "--max-evaluations", "1", *extra]
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while self.cli("health", check=False).returncode != 0:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the server did not serve:\n{self.log.read_text()[-4000:]}")
            time.sleep(0.25)

    def cli(self, *args: str, check: bool = True, token: str = "") -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EMBEDEVAL_")}
        if token:
            env["EMBEDEVAL_TOKEN"] = token
        return subprocess.run([str(BIN), *args, "--server", self.grpc], cwd=REPO, env=env, check=check,
                              capture_output=True, text=True)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("dashboard"), [])
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()):
        message = f"no chromium ({CHROMIUM}) or chromium-driver ({DRIVER}): run scripts/bootstrap"
        if os.environ.get("EMBEDEVAL_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def _errors(browser: webdriver.Chrome) -> List[str]:
    """The console's errors since the last call (a CSP breach is one)."""
    return [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]


@pytest.fixture(scope="module")
def comparison(server: Server) -> dict:
    out = server.cli("compare", "infonce-t0.1", "infonce-t0.5", "infonce-t1", "simple", "--dataset", "digits",
                     "--skip-linear", "--format", "json")
    return json.loads(out.stdout)


def test_every_page_loads_without_a_console_error(server: Server, browser: webdriver.Chrome,
                                                  comparison: dict) -> None:
    first = comparison["rows"][0]
    pages = ["/comparisons", f"/comparisons/{comparison['id']}", "/evaluations", f"/evaluations/{first['id']}",
             "/models", "/models/infonce-t0.1", "/datasets", "/datasets/digits", "/runs",
             "/runs/infonce-t0.2-run?dataset=digits"]
    _errors(browser)
    for page in pages:
        browser.get(server.web + page)
        assert browser.find_element(By.TAG_NAME, "h1").text, page
        assert _errors(browser) == [], page
    # Every sample image of the dataset page loaded.
    browser.get(server.web + "/datasets/digits")
    loaded = browser.execute_script(
        "return Array.from(document.images).filter(i => i.complete && i.naturalWidth === 8).length")
    assert loaded == 80
    if SHOTS is not None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        browser.get(server.web + f"/comparisons/{comparison['id']}")
        browser.save_screenshot(str(SHOTS / "dashboard-comparison.png"))


def _column(browser: webdriver.Chrome, header: str) -> List[str]:
    heads = [th.text.strip().rstrip(" ▲▼") for th in browser.find_elements(By.CSS_SELECTOR, "#models thead th")]
    i = heads.index(header)
    return [r.find_elements(By.TAG_NAME, "td")[i].text for r in browser.find_elements(By.CSS_SELECTOR, "#models tbody tr")]


def test_the_table_shows_the_api_numbers_and_sorts(server: Server, browser: webdriver.Chrome,
                                                   comparison: dict) -> None:
    browser.get(server.web + f"/comparisons/{comparison['id']}")
    models = _column(browser, "Model")
    by_model = {r["model"]: r for r in comparison["rows"]}
    assert sorted(models) == sorted(by_model)
    for model, tolerance, knn in zip(models, _column(browser, "Tolerance"), _column(browser, "kNN top-1")):
        assert tolerance == f"{by_model[model]['tolerance']:.4f}"
        assert knn == f"{100 * by_model[model]['knn']['top1']:.1f}%"
    for model, map_at_r in zip(models, _column(browser, "MAP@R")):
        assert map_at_r == f"{by_model[model]['retrieval']['map_at_r']:.4f}"
    head = [th for th in browser.find_elements(By.CSS_SELECTOR, "#models thead th") if th.text.startswith("Tolerance")][0]
    head.click()
    ascending = [float(v) for v in _column(browser, "Tolerance")]
    assert ascending == sorted(ascending)
    head.click()
    descending = [float(v) for v in _column(browser, "Tolerance")]
    assert descending == sorted(ascending, reverse=True)
    assert _column(browser, "Model") != models or ascending == descending


def test_hovering_a_point_shows_its_model_and_values(server: Server, browser: webdriver.Chrome,
                                                     comparison: dict) -> None:
    browser.get(server.web + f"/comparisons/{comparison['id']}")
    mark = browser.find_element(By.CSS_SELECTOR, ".figure circle.hit")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", mark)
    ActionChains(browser).move_to_element(mark).perform()
    tip = browser.find_element(By.CSS_SELECTOR, ".tooltip")
    WebDriverWait(browser, 5).until(lambda _: tip.is_displayed())
    model = tip.text.splitlines()[0]
    assert model in {r["model"] for r in comparison["rows"]}
    assert "tolerance" in tip.text and "kNN top-1" in tip.text


def test_a_running_evaluation_moves_and_ends_in_its_report(server: Server, browser: webdriver.Chrome) -> None:
    # The only slot busy with a comparison of the zoo: the evaluation waits,
    # then runs, while its page is open.
    server.cli("compare", "--all", "--dataset", "digits", "--detach")
    out = server.cli("eval", "infonce-t0.5", "--dataset", "digits", "--detach", "--format", "json")
    evaluation = json.loads(out.stdout)["evaluation_ids"][0]
    browser.get(server.web + f"/evaluations/{evaluation}")
    browser.execute_script("""
        window.__same_page = true; window.__seen = [];
        setInterval(() => { const p = document.querySelector('.live progress');
                            if (p) window.__seen.push(p.value); }, 10);""")
    WebDriverWait(browser, 120).until(
        lambda b: b.find_elements(By.CSS_SELECTOR, "#report .status.completed"))
    assert browser.execute_script("return window.__same_page") is True, "ended without a reload"
    seen = browser.execute_script("return window.__seen")
    assert any(0 < v < 1 for v in seen), f"the bar moved: {seen[:20]}…"
    assert "Per class" in browser.find_element(By.ID, "report").text
    assert _errors(browser) == []


def test_a_class_named_like_html_is_text(server: Server, browser: webdriver.Chrome) -> None:
    browser.get(server.web + "/datasets/hostile")
    time.sleep(0.5)
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text
    cells = [td.text for td in browser.find_elements(By.CSS_SELECTOR, "table.classes tbody td:first-child")]
    assert cells[0] == HOSTILE
    assert _errors(browser) == []


def test_with_a_token_a_page_needs_it(tmp_path: Path, browser: webdriver.Chrome) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    guarded = Server(tmp_path, ["--auth-token-file", str(token)])
    try:
        browser.get(guarded.web + "/models")
        assert browser.find_element(By.TAG_NAME, "h1").text == "Sign in"
        field = browser.find_element(By.NAME, "token")
        field.send_keys("wrong")
        field.submit()
        assert "wrong token" in browser.find_element(By.TAG_NAME, "main").text
        field = browser.find_element(By.NAME, "token")
        field.send_keys("s3cret")
        field.submit()
        # The sign-in page's heading may be found just before the redirect
        # replaces it: a stale heading is looked up again.
        WebDriverWait(browser, 10, ignored_exceptions=(StaleElementReferenceException,)).until(
            lambda b: b.find_element(By.TAG_NAME, "h1").text == "Models"
        )
        assert browser.current_url.endswith("/models")
        # The refusals (401) were logged as failed loads; nothing else.
        assert all(" 401 " in e for e in _errors(browser))
    finally:
        guarded.stop()


def test_the_embedding_space_draws_a_point_per_row_in_a_colour_per_class(server: Server, browser: webdriver.Chrome,
                                                                         comparison: dict) -> None:
    _errors(browser)
    browser.get(server.web + f"/comparisons/{comparison['id']}/space?method=tsne")
    points = browser.find_elements(By.CSS_SELECTOR, ".space .points circle")
    assert len(points) == 2 * 540, "the smallest and largest tau, every test row"
    colours = {p.get_attribute("fill") for p in points}
    assert len(colours) == 10, colours
    assert _errors(browser) == []
    if SHOTS is not None:
        browser.save_screenshot(str(SHOTS / "dashboard-space.png"))


def test_the_gallery_shows_k_neighbours_per_model(server: Server, browser: webdriver.Chrome,
                                                  comparison: dict) -> None:
    _errors(browser)
    browser.get(server.web + f"/comparisons/{comparison['id']}/neighbours?row=3&k=6")
    galleries = browser.find_elements(By.CSS_SELECTOR, ".gallery.neighbours")
    assert len(galleries) == len(comparison["rows"])
    for g in galleries:
        thumbs = g.find_elements(By.CSS_SELECTOR, "figure.thumb img")
        assert len(thumbs) == 6
        assert all(browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", t) == 8
                   for t in thumbs)
    assert _errors(browser) == []
    if SHOTS is not None:
        browser.save_screenshot(str(SHOTS / "dashboard-neighbours.png"))
