"""Screenshots of the dashboard for the docs, by headless chromium:
``screenshots.py WEB_URL COMPARISON_ID OUT_PREFIX`` writes
OUT_PREFIX-comparison.png, -space.png and -neighbours.png (run by
scripts/dashboard-screenshots)."""
from __future__ import annotations

import shutil
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service


def main() -> None:
    web, comparison, out = sys.argv[1:4]
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000", "--hide-scrollbars"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"))
    driver.set_page_load_timeout(600)
    try:
        for name, path in (("comparison", f"/comparisons/{comparison}"),
                           ("space", f"/comparisons/{comparison}/space?method=tsne"),
                           ("neighbours", f"/comparisons/{comparison}/neighbours?row=12&k=8")):
            driver.get(web + path)
            driver.save_screenshot(f"{out}-{name}.png")
            print(f"{out}-{name}.png")
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
