"""The Dagster UI in a real browser (Debian's chromium, driven by Selenium): the asset graph
shows every layer, and a user can launch a partition's materialization and a backfill.

Screenshots land in docs/screenshots/, which the README shows.
"""

from __future__ import annotations

import contextlib
import time
from datetime import date, timedelta

import httpx
import pytest

from fraud_platform.config import PROJECT_ROOT
from fraud_platform.resources import LakeResource
from fraud_platform.simulation.history import write_history
from fraud_platform.simulation.reference import build_world
from fraud_platform.stack.prerequisites import require_binary

pytestmark = pytest.mark.integration
SCREENSHOTS = PROJECT_ROOT / "docs" / "screenshots"
LAYERS = ["kafka", "raw", "processed", "features", "training", "models", "quality"]
# The last three days: inside the launch dialog's default 90-day view.
DAYS = [(date.today() - timedelta(days=n)).isoformat() for n in (3, 2, 1)]
WAIT_S = 240


@pytest.fixture(scope="module")
def ui(stack, settings):
    """The stack's Dagster UI, over a lake holding three simulated days."""
    world = build_world(seed=11, n_users=200, n_merchants=300)
    lake = LakeResource(root=settings.lake_root)
    write_history(lake, world, days=3, volume=500, end=date.today())
    return stack.services["dagster"].url


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    # Debian's browser and driver, installed on first use like the stack's other packages.
    options = webdriver.ChromeOptions()
    options.binary_location = require_binary("chromium", "chromium")
    driver_path = require_binary("chromedriver", "chromium-driver")
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1600,1000",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


def graphql(url: str, query: str, **variables) -> dict:
    body = {"query": query, "variables": variables}
    response = httpx.post(f"{url}/graphql", json=body, timeout=30)
    response.raise_for_status()
    return response.json()["data"]


def wait_for(what: str, probe, timeout: float = WAIT_S):
    """Poll `probe` until it returns something truthy; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(1)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


def run_status(url: str, partition: str, ignore: frozenset = frozenset()) -> tuple | None:
    """(run id, status) of the newest run of `partition` not in `ignore` (runs from before)."""
    data = graphql(
        url,
        """query($partition: String!) {
             runsOrError(filter: {tags: [{key: "dagster/partition", value: $partition}]}) {
               ... on Runs { results { runId status } } } }""",
        partition=partition,
    )
    runs = [r for r in data["runsOrError"]["results"] if r["runId"] not in ignore]
    return (runs[0]["runId"], runs[0]["status"]) if runs else None


def run_ids(url: str, partition: str) -> frozenset:
    data = graphql(
        url,
        """query($partition: String!) {
             runsOrError(filter: {tags: [{key: "dagster/partition", value: $partition}]}) {
               ... on Runs { results { runId } } } }""",
        partition=partition,
    )
    return frozenset(r["runId"] for r in data["runsOrError"]["results"])


def backfills(url: str) -> list[dict]:
    """The newest backfills, newest first."""
    data = graphql(
        url,
        "{ partitionBackfillsOrError(limit: 20) { ... on PartitionBackfills "
        "{ results { id status partitionNames } } } }",
    )
    return data["partitionBackfillsOrError"]["results"]


def backfill_status(
    url: str, partitions: list[str], ignore: frozenset = frozenset()
) -> tuple[str, str] | None:
    """(backfill id, status) of the newest backfill of exactly `partitions` not in `ignore`
    (backfills from before)."""
    for backfill in backfills(url):
        same = sorted(backfill["partitionNames"] or []) == sorted(partitions)
        if same and backfill["id"] not in ignore:
            return backfill["id"], backfill["status"]
    return None


def finished(found: tuple[str, str] | None, done: set[str], failed: set[str]):
    """`found` once its status is in `done`; fails at once on a status in `failed`."""
    if found is None:
        return None
    assert found[1] not in failed, f"{found[0]} ended {found[1]}"
    return found if found[1] in done else None


def open_page(browser, url: str, ready_xpath: str):
    from selenium.webdriver.common.by import By

    browser.get(url)
    wait_for(f"{ready_xpath} on {url}", lambda: browser.find_elements(By.XPATH, ready_xpath), 60)
    dismiss_community_modal(browser)


def dismiss_community_modal(browser) -> None:
    """A new browser profile is asked to join Dagster's community, at some point after the
    page renders; skip it wherever it shows up. A Skip button still sliding in may not take
    the click yet: every click loop (`click`) calls this again until it does."""
    from selenium.common.exceptions import (
        ElementClickInterceptedException,
        StaleElementReferenceException,
    )
    from selenium.webdriver.common.by import By

    for button in browser.find_elements(By.XPATH, "//button[normalize-space()='Skip']"):
        with contextlib.suppress(ElementClickInterceptedException, StaleElementReferenceException):
            button.click()


def click(browser, element, then_type: str = "") -> bool:
    """Click (and type), or False while something covers the element: the community modal,
    a dialog still opening."""
    from selenium.common.exceptions import ElementClickInterceptedException

    try:
        element.click()
    except ElementClickInterceptedException:
        dismiss_community_modal(browser)
        return False
    if then_type:
        element.send_keys(then_type)
    return True


def launch_from_dialog(browser, url: str, selection: str, button_text: str, shot: str) -> None:
    """Open raw/transactions, type a partition selection into the Materialize dialog, launch."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    materialize = "//button[contains(normalize-space(), 'Materialize')]"
    open_page(browser, f"{url}/assets/raw/transactions", materialize)
    button = browser.find_element(By.XPATH, materialize)
    wait_for("the Materialize button", lambda: click(browser, button), 30)
    box = wait_for(
        "the partition selection box",
        lambda: browser.find_elements(
            By.CSS_SELECTOR, "input[placeholder='No matching partitions']"
        ),
        30,
    )[0]
    wait_for(
        "the partition box to take input",
        lambda: click(browser, box, selection + Keys.ENTER),
        30,
    )
    launch = f"//button[normalize-space()='{button_text}']"
    wait_for(f"the {button_text!r} button", lambda: browser.find_elements(By.XPATH, launch), 30)
    dismiss_community_modal(browser)
    browser.save_screenshot(str(SCREENSHOTS / shot))
    button = browser.find_element(By.XPATH, launch)
    wait_for(f"the {button_text!r} button to click", lambda: click(browser, button), 30)


def test_asset_graph_shows_every_layer(ui, browser):
    from selenium.webdriver.common.by import By

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    open_page(browser, f"{ui}/asset-groups", "//*[normalize-space()='Global asset lineage']")
    for layer in LAYERS:
        group = f"//*[text()[normalize-space()='{layer}']]"  # in the sidebar and the graph
        wait_for(f"the {layer} group", lambda g=group: browser.find_elements(By.XPATH, g), 60)
    time.sleep(2)  # let the graph finish its layout before the picture
    browser.save_screenshot(str(SCREENSHOTS / "01-asset-lineage.png"))


def test_a_partition_materializes_from_the_ui(ui, browser):
    day = DAYS[1]
    earlier = run_ids(ui, day)
    launch_from_dialog(browser, ui, day, "Launch 1 run", "02-materialize-one-partition.png")
    run_id, status = wait_for(
        f"the run of {day} to succeed",
        lambda: finished(run_status(ui, day, earlier), {"SUCCESS"}, {"FAILURE", "CANCELED"}),
    )
    assert status == "SUCCESS"
    open_page(browser, f"{ui}/runs/{run_id}", "//*[text()[normalize-space()='Success']]")
    time.sleep(2)
    browser.save_screenshot(str(SCREENSHOTS / "03-run-succeeded.png"))


def test_a_backfill_launches_from_the_ui(ui, browser):
    selection = f"[{DAYS[0]}...{DAYS[-1]}]"
    earlier = frozenset(b["id"] for b in backfills(ui))
    launch_from_dialog(browser, ui, selection, "Launch backfill", "04-backfill-dialog.png")
    backfill_id, status = wait_for(
        f"the backfill of {selection} to complete",
        lambda: finished(
            backfill_status(ui, DAYS, earlier),
            {"COMPLETED", "COMPLETED_SUCCESS"},
            {"FAILED", "COMPLETED_FAILED", "CANCELED"},
        ),
    )
    assert status in {"COMPLETED", "COMPLETED_SUCCESS"}
    open_page(browser, f"{ui}/runs/b/{backfill_id}", "//*[text()[normalize-space()='Succeeded']]")
    time.sleep(2)
    browser.save_screenshot(str(SCREENSHOTS / "05-backfill-completed.png"))
