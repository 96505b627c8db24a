"""The Dagster UI tested as a person sees it: Debian's Chromium, driven by Playwright, reads
the real web server.

A copy of the loaded month gets two runs recorded in a Dagster instance of the test's own (the
web server shows what its instance recorded): the segment profiles of the last day, then that
day's orders again from a file cut to two lines, which fails the blocking ``stg_orders`` check
on its row-count rule.
``dagster-webserver`` then serves ``workspace.yaml`` on loopback, and the browser looks at the
lineage, the schedules and sensors, the segment profile's plot and the failed check.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from dagster import DagsterInstance, Definitions
from playwright.sync_api import Locator, Page, expect, sync_playwright

from seg_pipeline.definitions import build_definitions
from seg_pipeline.ops.runs import run_daily_range
from seg_pipeline.settings import REPO_ROOT, Settings
from seg_pipeline.sources import ORDERS
from tests.conftest import MONTH_END, MONTH_START, TEST_ENV, copy_vault, own_files

pytestmark = pytest.mark.slow

WEBSERVER = str(Path(sys.executable).parent / "dagster-webserver")
# Debian's package (`make test` installs it when missing); Playwright never downloads one here.
CHROMIUM = os.environ.get("SEG_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # root in a container
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # no connections to Google's services (there is no internet, and refusals are noisy)
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# When set, the README's screenshots are copied there (docs/images, made with
# SEG_UI_SCREENSHOTS_DIR=docs/images pytest tests/ui).
SCREENSHOTS_ENV = "SEG_UI_SCREENSHOTS_DIR"
README_SHOTS = ("lineage", "segment_profile", "failed_check")
MAIN_ASSETS = (
    "customer_features",
    "customer_segments",
    "segment_profiles",
    "customer_scores",
    "audiences",
)
PLOT = "plot_profile_heatmap"
FAILED_CHECK = "stg_orders_expectations"
FAILED_EXPECTATION = "expect_table_row_count_to_be_between"
TIMEOUT_MS = 30_000


@dataclass(frozen=True)
class Served:
    """The web server's address, the definitions it serves and where screenshots go."""

    url: str
    defs: Definitions
    shots: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(settings: Settings, home: Path) -> dict[str, str]:
    """What the code location reads: the test's paths and keys."""
    return {
        **os.environ,
        **TEST_ENV,
        "DAGSTER_HOME": str(home),
        "SEG_DATA_DIR": str(settings.data_dir),
        "SEG_WAREHOUSE": str(settings.warehouse_path),
        "SEG_PARTITIONS_START": MONTH_START.isoformat(),
        # Truth checks compare segments with the generator's personas: not what is looked at
        # here, and they would lengthen the run.
        "SEG_TRUTH_DIR": str(settings.data_dir / "no_truth"),
    }


def _materialize(settings: Settings, defs: Definitions, instance: DagsterInstance) -> None:
    """Two runs recorded in ``instance``: segment_profiles of the last day (with its plots),
    then that day's orders from a file cut to two lines, whose blocking stg_orders check fails
    on its row-count rule.

    Only these assets run (the loaded month holds everything upstream): the whole daily job
    for a day takes about 45 s more and shows nothing else the test looks at.
    """
    profiles = run_daily_range(
        defs, MONTH_END, MONTH_END, instance=instance, assets=["segment_profiles"]
    )
    assert profiles.success
    orders = ORDERS.path_for(settings.landing_dir, MONTH_END)
    lines = orders.read_text(encoding="utf-8").splitlines(keepends=True)
    orders.write_text("".join(lines[:3]), encoding="utf-8")
    failed = run_daily_range(
        defs,
        MONTH_END,
        MONTH_END,
        instance=instance,
        raise_on_error=False,
        assets=["raw_orders", "stg_orders"],
    )
    evaluations = {e.asset_check_key.name: e for e in failed.get_asset_check_evaluations()}
    assert not evaluations[FAILED_CHECK].passed


def _start_webserver(env: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    """dagster-webserver on 127.0.0.1 and a free port, in a process group of its own (the code
    server it starts goes with it); its URL."""
    port = _free_port()
    command = [WEBSERVER, "-w", str(REPO_ROOT / "workspace.yaml"), "-h", "127.0.0.1"]
    with log.open("wb") as out:
        server = subprocess.Popen(
            [*command, "-p", str(port)],
            env=env,
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return server, f"http://127.0.0.1:{port}"


def _wait_for_server(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert server.poll() is None, log.read_text(errors="replace")[-3000:]
        try:
            with urllib.request.urlopen(f"{url}/server_info", timeout=5) as response:
                json.loads(response.read())
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"dagster-webserver did not answer: {log.read_text()[-3000:]}")


def _stop(server: subprocess.Popen) -> None:
    """SIGTERM the web server's process group (it and its code server), SIGKILL if stuck."""
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)


@pytest.fixture
def served(settings: Settings, loaded_month: Path, tmp_path: Path) -> Iterator[Served]:
    """The web server on loopback over a copy of the loaded month with two recorded runs."""
    started = time.monotonic()
    shutil.copy(loaded_month, settings.warehouse_path)
    copy_vault(loaded_month.parent, settings)
    own = own_files(settings, tmp_path / "data")
    own = replace(own, warehouse_path=settings.warehouse_path)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    env = _env(own, home)
    defs = build_definitions(Settings.from_env(env))
    log = tmp_path / "webserver.log"
    with DagsterInstance.from_config(str(home)) as instance:
        # The instance's storage exists now (two processes creating it at once race): the web
        # server starts (10-15 s) while the runs are recorded.
        instance.get_runs_count()
        server, url = _start_webserver(env, log)
        try:
            _materialize(own, defs, instance)
            _wait_for_server(url, server, log)
            shots = tmp_path / "screenshots"
            shots.mkdir()
            print(f"\nUI ready in {time.monotonic() - started:.0f} s; screenshots: {shots}")
            yield Served(url, defs, shots)
        finally:
            _stop(server)


@pytest.fixture
def page() -> Iterator[Page]:
    """A Chromium page (1400x1000) of a fresh browser profile."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium (as root)")
    with sync_playwright() as playwright:
        # Playwright gives each launch a fresh, temporary profile (--user-data-dir) and adds
        # --headless; it downloads nothing when given the browser.
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(TIMEOUT_MS)
            expect.set_options(timeout=TIMEOUT_MS)
            # Dagster's newsletter prompt on a new instance, as if dismissed once (it would
            # cover the screenshots).
            page.add_init_script("window.localStorage.setItem('communityNux', '\"1\"')")
            yield page
        finally:
            browser.close()


def _shot(page: Page, served: Served, name: str) -> None:
    """A full-page screenshot in the test's output; the README's also to SCREENSHOTS_ENV."""
    path = served.shots / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    target = os.environ.get(SCREENSHOTS_ENV)
    if target and name in README_SHOTS:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)


def _groups(defs: Definitions) -> dict[str, list[str]]:
    """Each asset group of the definitions and its assets."""
    graph = defs.resolve_asset_graph()
    groups: dict[str, list[str]] = {}
    for key in graph.get_all_asset_keys():
        groups.setdefault(graph.get(key).group_name, []).append(key.to_user_string())
    return groups


def _sidebar_item(page: Page, name: str) -> Locator:
    """The lineage page's tree entry of a group or an asset (its label carries the name as
    its title)."""
    return page.locator(f'[title="{name}"]')


def check_lineage(page: Page, served: Served) -> None:
    """Every group in the graph, every asset in the tree beside it, the segmentation group
    open in the graph."""
    groups = _groups(served.defs)
    assert {a for assets in groups.values() for a in assets} >= set(MAIN_ASSETS)
    page.goto(f"{served.url}/asset-groups?expanded=global%40global%3Asegmentation")
    graph = page.locator("svg")
    for group in groups:
        expect(graph.get_by_text(group, exact=True).first).to_be_visible()
    for asset in groups["segmentation"]:
        expect(graph.get_by_text(asset, exact=True).first).to_be_visible()
    for group in sorted(groups):
        item = page.locator("[class*=AssetSidebarNode_itemContainer]").filter(
            has=_sidebar_item(page, group)
        )
        item.get_by_role("button").filter(
            has=page.get_by_role("img", name="arrow_drop_down")
        ).click()
    for asset in sorted(a for assets in groups.values() for a in assets):
        expect(_sidebar_item(page, asset).first).to_be_visible()
    _shot(page, served, "lineage")


def check_automation(page: Page, served: Served) -> None:
    """Every schedule and sensor of the definitions on the automation page."""
    names = [s.name for s in served.defs.schedules or []]
    names += [s.name for s in served.defs.sensors or []]
    assert names
    page.goto(f"{served.url}/automation")
    for name in names:
        expect(page.get_by_text(name, exact=True)).to_be_visible()
    _shot(page, served, "automation")


def check_segment_profile_plot(page: Page, served: Served) -> None:
    """The latest segment_profiles materialization's heatmap opens as an image that loaded."""
    page.goto(f"{served.url}/assets/segment_profiles")
    row = page.get_by_role("row").filter(has=page.get_by_text(PLOT, exact=True))
    row.get_by_text("Show Markdown").click()
    dialog = page.get_by_role("dialog").filter(has_text=PLOT)
    image = dialog.locator("img[src^='data:image/png']")
    expect(image).to_be_visible()
    expect(image).to_have_js_property("complete", True)
    width = image.evaluate("img => img.naturalWidth")
    assert width > 0, "the plot did not load"
    _shot(page, served, "segment_profile")
    page.get_by_role("button", name="Close").click()


def check_failed_check(page: Page, served: Served) -> None:
    """stg_orders' check page: failed, naming the failed expectation."""
    page.goto(f"{served.url}/assets/stg_orders?view=checks")
    expect(page.get_by_text(FAILED_CHECK).first).to_be_visible()
    expect(page.get_by_text("Failed", exact=True).first).to_be_visible()
    expect(page.get_by_text(f"{FAILED_EXPECTATION} [ERROR]")).to_be_visible()
    _shot(page, served, "failed_check")


def test_the_ui_shows_lineage_automation_a_plot_and_a_failed_check(
    served: Served, page: Page
) -> None:
    """Each step saves its screenshot once the page shows what it must; a failing step saves
    what the page showed instead as ``failed_<step>.png`` (Playwright's message says what was
    missing)."""
    for step in (check_lineage, check_automation, check_segment_profile_plot, check_failed_check):
        try:
            step(page, served)
        except Exception:
            _shot(page, served, f"failed_{step.__name__}")
            raise
