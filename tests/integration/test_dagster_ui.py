"""The first run (`fraud-platform run`, what `make run` does) on the test stack, then the
Dagster UI over the state it leaves, in a real browser (Debian's chromium, driven by Selenium):
every layer has materialized partitions, a model is promoted, predictions keep arriving, the
quality dashboard's link opens, and a user can launch a partition and a backfill from the UI.

Screenshots land in FRAUD_SCREENSHOTS_DIR (docs/screenshots/ for the README's pictures), else
in a temporary folder. This module runs last (conftest.py): its live traffic and the default
Flink jobs stay out of the other tests' way.
"""

from __future__ import annotations

import contextlib
import os
import time
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest

from fraud_platform.stack.demo import DemoWorld
from fraud_platform.stack.first_run import FirstRun, predictions_count
from fraud_platform.stack.prerequisites import require_binary
from fraud_platform.topics import MODEL_PREDICTIONS

pytestmark = [pytest.mark.integration, pytest.mark.last]
LAYERS = ["kafka", "raw", "processed", "features", "training", "models", "quality", "warehouse"]
WAIT_S = 240


@pytest.fixture(scope="module")
def first_run(stack, settings):
    """`make run`'s steps with its defaults; the on-demand services it started (traffic,
    docs) are stopped afterwards, like the rest of the session's."""
    on_demand = [s.name for s in stack.services.values() if s.on_demand]
    running = [name for name in on_demand if stack.services[name].process.is_running()]
    run = FirstRun(settings, DemoWorld())
    times = {}
    for title, step in run.steps():
        began = time.monotonic()
        step(lambda _detail: None)
        times[title] = round(time.monotonic() - began, 1)
    print(f"first run steps (s): {times}")
    yield run.summarize()
    stack.down([name for name in on_demand if name not in running])


@pytest.fixture(scope="module")
def ui(first_run):
    return first_run.dagster_url


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    folder = os.environ.get("FRAUD_SCREENSHOTS_DIR")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


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


def launch_from_dialog(browser, url: str, selection: str, button_text: str, shot: Path) -> None:
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
    browser.save_screenshot(str(shot))
    button = browser.find_element(By.XPATH, launch)
    wait_for(f"the {button_text!r} button to click", lambda: click(browser, button), 30)


def picture(browser, url: str, ready_xpath: str, shot: Path) -> None:
    open_page(browser, url, ready_xpath)
    time.sleep(2)  # let the page finish its layout before the picture
    browser.save_screenshot(str(shot))


def history_days(count: int) -> list[str]:
    """The last `count` days of the first run's history (it ends yesterday)."""
    return [(date.today() - timedelta(days=n)).isoformat() for n in range(count, 0, -1)]


def test_every_layer_has_materialized_partitions(first_run, ui, browser, screenshots):
    from selenium.webdriver.common.by import By

    data = graphql(ui, "{ assetNodes { groupName partitionStats { numMaterialized } } }")
    materialized = {}
    for node in data["assetNodes"]:
        count = (node["partitionStats"] or {}).get("numMaterialized", 0)
        materialized[node["groupName"]] = materialized.get(node["groupName"], 0) + count
    for layer in LAYERS[1:]:  # kafka's topics are external: observed, not materialized
        assert materialized.get(layer, 0) > 0, f"nothing materialized in {layer}"
    assert materialized["raw"] >= DemoWorld().days
    open_page(browser, f"{ui}/asset-groups", "//*[normalize-space()='Global asset lineage']")
    for layer in LAYERS:
        group = f"//*[text()[normalize-space()='{layer}']]"  # in the sidebar and the graph
        wait_for(f"the {layer} group", lambda g=group: browser.find_elements(By.XPATH, g), 60)
    time.sleep(2)
    browser.save_screenshot(str(screenshots / "01-asset-lineage.png"))


def test_the_first_run_s_backfill_succeeded(first_run, ui, browser, screenshots):
    assert first_run.backfill_id, "the first run launched no backfill"

    def status() -> str:
        data = graphql(
            ui,
            "query($id: String!) { partitionBackfillOrError(backfillId: $id) "
            "{ ... on PartitionBackfill { status } } }",
            id=first_run.backfill_id,
        )
        return data["partitionBackfillOrError"]["status"]

    # The first run goes on once every partition is materialized; the daemon's next tick
    # (every 30 s) marks the backfill completed.
    ended = wait_for("the backfill's end", lambda: (s := status()) != "REQUESTED" and s, 90)
    assert ended in {"COMPLETED", "COMPLETED_SUCCESS"}
    picture(
        browser,
        f"{ui}/runs/b/{first_run.backfill_id}",
        "//*[text()[normalize-space()='Succeeded']]",
        screenshots / "02-first-run-backfill.png",
    )


def test_a_model_is_promoted_with_its_evaluation(first_run, ui, browser, screenshots):
    assert first_run.model, "no production model after the first run"
    assert 0.5 < first_run.metrics["auc_roc"] <= 1.0
    picture(
        browser,
        f"{ui}/assets/models/evaluation",
        "//*[text()[normalize-space()='curves']]",
        screenshots / "03-model-evaluation.png",
    )
    picture(
        browser,
        f"{ui}/assets/raw/transactions?view=checks",
        "//*[contains(text(), 'ingestion')]",
        screenshots / "04-partition-checks.png",
    )


def test_predictions_keep_arriving(first_run, settings, ui, browser, screenshots):
    before = predictions_count(settings, MODEL_PREDICTIONS.name)
    wait_for(
        "more predictions",
        lambda: predictions_count(settings, MODEL_PREDICTIONS.name) > before,
        120,
    )
    picture(
        browser,
        f"{ui}/assets/streaming/enrichment",
        "//*[contains(text(), 'enrichment')]",
        screenshots / "05-streaming-health.png",
    )


def test_the_dashboard_link_opens_a_page(first_run, ui):
    data = graphql(
        ui,
        """{ assetNodes(assetKeys: [{path: ["quality", "dashboard"]}]) {
             assetMaterializations(limit: 1) {
               metadataEntries { label ... on UrlMetadataEntry { url } } } } }""",
    )
    entries = data["assetNodes"][0]["assetMaterializations"][0]["metadataEntries"]
    links = [e["url"] for e in entries if e["label"] == "open"]
    assert links, f"no link in the dashboard's metadata: {[e['label'] for e in entries]}"
    page = httpx.get(links[0], timeout=10)
    assert page.status_code == 200
    assert "<html" in page.text.lower()
    assert first_run.dashboard_url and httpx.get(first_run.dashboard_url).status_code == 200


def test_a_partition_materializes_from_the_ui(ui, browser, screenshots):
    day = history_days(2)[0]
    earlier = run_ids(ui, day)
    shot = screenshots / "06-materialize-one-partition.png"
    launch_from_dialog(browser, ui, day, "Launch 1 run", shot)
    run_id, status = wait_for(
        f"the run of {day} to succeed",
        lambda: finished(run_status(ui, day, earlier), {"SUCCESS"}, {"FAILURE", "CANCELED"}),
    )
    assert status == "SUCCESS"
    picture(
        browser,
        f"{ui}/runs/{run_id}",
        "//*[text()[normalize-space()='Success']]",
        screenshots / "07-run-succeeded.png",
    )


def test_a_backfill_launches_from_the_ui(ui, browser, screenshots):
    days = history_days(3)
    selection = f"[{days[0]}...{days[-1]}]"
    earlier = frozenset(b["id"] for b in backfills(ui))
    launch_from_dialog(browser, ui, selection, "Launch backfill", screenshots / "08-backfill.png")
    backfill_id, status = wait_for(
        f"the backfill of {selection} to complete",
        lambda: finished(
            backfill_status(ui, days, earlier),
            {"COMPLETED", "COMPLETED_SUCCESS"},
            {"FAILED", "COMPLETED_FAILED", "CANCELED"},
        ),
    )
    assert status in {"COMPLETED", "COMPLETED_SUCCESS"}
    picture(
        browser,
        f"{ui}/runs/b/{backfill_id}",
        "//*[text()[normalize-space()='Succeeded']]",
        screenshots / "09-backfill-completed.png",
    )
