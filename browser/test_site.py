"""The built site as a reader meets it: both languages, search, math, offline."""

from urllib.parse import urlsplit

import pytest
from conftest import HTML, console_errors, requested_urls
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

LANGUAGES = {"en": "en", "zh_CN": "zh-CN"}
PAGES = sorted(
    path.relative_to(HTML / "en").with_suffix("").as_posix()
    for path in (HTML / "en").rglob("*.html")
    if not path.relative_to(HTML / "en").parts[0].startswith("_")
)
if not PAGES:
    pytest.exit("no built site: run `nox -s docs` first", returncode=2)

SCREENSHOT_PAGES = [
    "index",
    "guide/formats",
    "glossary",
    "auto_examples/index",
    "auto_examples/clipping/plot_seed_demonstration",
    "auto_examples/formats/plot_range_precision",
    "auto_examples/amp/plot_precision_shootout",
]
# A word only the glossary defines, in each language, and the page it must find.
SEARCHES = [("en", "subnormal", "glossary"), ("zh_CN", "次正规数", "glossary")]


def _open(driver, url):
    driver.get(url)
    WebDriverWait(driver, 20).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )


def _assert_healthy(driver, site):
    """Nothing left 127.0.0.1, nothing failed in the console, every image has alt."""
    outside = [
        url
        for url in requested_urls(driver)
        if not url.startswith(site) and urlsplit(url).scheme not in {"data", "blob"}
    ]
    assert not outside, f"{driver.current_url} requested {outside}"
    errors = console_errors(driver)
    assert not errors, f"{driver.current_url}: {errors}"
    missing_alt = [
        img.get_attribute("src")
        for img in driver.find_elements(By.TAG_NAME, "img")
        if not (img.get_attribute("alt") or "").strip()
    ]
    assert not missing_alt, f"{driver.current_url}: images without alt {missing_alt}"


def _switch_to(driver, hreflang):
    driver.find_element(
        By.CSS_SELECTOR, f'nav.mixprec-languages a[hreflang="{hreflang}"]'
    ).click()
    WebDriverWait(driver, 20).until(
        lambda d: (
            d.execute_script("return document.readyState") == "complete"
            and d.find_element(By.TAG_NAME, "html").get_attribute("lang") == hreflang
        )
    )


@pytest.mark.parametrize("page", PAGES)
def test_language_switch_round_trip(browser, site, page):
    _open(browser, f"{site}/en/{page}.html")
    _assert_healthy(browser, site)
    alternates = {
        link.get_attribute("hreflang"): link.get_attribute("href")
        for link in browser.find_elements(By.CSS_SELECTOR, 'link[rel="alternate"]')
    }
    assert alternates == {
        hreflang: f"{site}/{code}/{page}.html" for code, hreflang in LANGUAGES.items()
    }

    _switch_to(browser, "zh-CN")
    assert browser.current_url == f"{site}/zh_CN/{page}.html"
    _assert_healthy(browser, site)

    _switch_to(browser, "en")
    assert browser.current_url == f"{site}/en/{page}.html"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_math_is_typeset(browser, site, lang):
    _open(browser, f"{site}/{lang}/guide/index.html")
    WebDriverWait(browser, 20).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "mjx-container svg")
    )
    _assert_healthy(browser, site)


@pytest.mark.parametrize(("lang", "word", "page"), SEARCHES)
def test_search_finds_the_page(browser, site, lang, word, page):
    _open(browser, f"{site}/{lang}/search.html?q={word}")
    try:
        WebDriverWait(browser, 20).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, "#search-results ul.search li")
        )
    except TimeoutException:
        status = browser.find_element(By.ID, "search-results").text
        pytest.fail(f"searching {word!r} in {lang} found nothing: {status!r}")
    hits = [
        a.get_attribute("href")
        for a in browser.find_elements(By.CSS_SELECTOR, "#search-results ul.search a")
    ]
    assert any(f"/{lang}/{page}.html" in hit for hit in hits), hits
    _assert_healthy(browser, site)


def test_root_sends_each_reader_to_their_language(browser, chinese_browser, site):
    for driver, lang in ((browser, "en"), (chinese_browser, "zh_CN")):
        driver.get(f"{site}/index.html")
        WebDriverWait(driver, 20).until(
            lambda d, lang=lang: d.current_url == f"{site}/{lang}/index.html"
        )


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("page", SCREENSHOT_PAGES)
def test_screenshot(browser, site, screenshots, lang, page):
    _open(browser, f"{site}/{lang}/{page}.html")
    _assert_healthy(browser, site)
    # The whole page, up to a height a person can still scroll through.
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1280, min(height, 8000))
    name = f"{lang}-{page.replace('/', '-')}.png"
    try:
        assert browser.save_screenshot(str(screenshots / name))
    finally:
        browser.set_window_size(1280, 900)


def test_site_works_from_file_urls(browser):
    """An offline copy opened from disk: math, search and the switcher still work.

    Browsers forbid a page opened from disk to fetch other files, so there search
    lists its results without the excerpts it shows when served.
    """
    root = HTML.resolve().as_uri()
    _open(browser, f"{root}/en/guide/index.html")
    WebDriverWait(browser, 20).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "mjx-container svg")
    )
    _switch_to(browser, "zh-CN")
    assert browser.current_url == f"{root}/zh_CN/guide/index.html"
    _open(browser, f"{root}/zh_CN/search.html?q=次正规数")
    WebDriverWait(browser, 20).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#search-results ul.search li")
    )
    assert not console_errors(browser)
