"""The API docs as a person sees them: headless Chromium opens Swagger UI at the gateway's /docs/.

Playwright (PyPI) drives Debian's Chromium (`executable_path`); it never downloads a browser.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, sync_playwright

from gateway import render

# Headless, sandbox-free (CI runs as root), and nothing that reaches out to the network.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
RENDER_TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def page(chromium: str, gateway: render.Gateway) -> Iterator[Page]:
    """A page of a fresh headless Chromium with an empty profile."""
    # Chromium refuses some ports outright (ERR_UNSAFE_PORT: 10080, 6000, ...), which a moved
    # stack (EMPORIUM_PORT_OFFSET) may land on; the gateway's port is allowed explicitly.
    flags = [*CHROMIUM_FLAGS, f"--explicitly-allowed-ports={gateway.port}"]
    with (
        tempfile.TemporaryDirectory(prefix="emporium-chromium-") as profile,
        sync_playwright() as playwright,
    ):
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=chromium, headless=True, args=flags
        )
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def operation(page: Page, method: str, path: str):
    """Swagger UI's block for one operation: `.opblock-<method>` holding the path."""
    return page.locator(f'.opblock.opblock-{method}:has(.opblock-summary-path[data-path="{path}"])')


def test_the_docs_page_renders_the_api_with_its_title(page: Page, gateway_url: str) -> None:
    response = page.goto(f"{gateway_url}/docs/")
    assert response is not None
    assert response.status == 200
    register = operation(page, "post", "/v1/users:register")
    register.wait_for(state="visible", timeout=RENDER_TIMEOUT_MS)
    assert page.title() == "Emporium API"
    assert page.locator(".information-container .title").inner_text().startswith("Emporium API")
    # The operation's summary line shows the path and the description's first words.
    assert "/v1/users:register" in register.inner_text()


def test_the_docs_page_lists_every_promised_route(
    page: Page, gateway_url: str, promised_routes: list[tuple[str, str]]
) -> None:
    page.goto(f"{gateway_url}/docs/")
    page.locator(".opblock").first.wait_for(state="visible", timeout=RENDER_TIMEOUT_MS)
    missing = [
        f"{method.upper()} {path}"
        for method, path in promised_routes
        if operation(page, method, path).count() == 0
    ]
    assert not missing, f"Swagger UI does not list: {', '.join(missing)}"


def test_a_person_signs_in_through_authorize_and_calls_an_api_that_needs_a_token(
    page: Page, gateway_url: str
) -> None:
    import httpx

    login = httpx.post(
        f"{gateway_url}/v1/auth:login",
        json={"email": "admin@example.com", "password": "emporium-admin-dev"},
        timeout=30,
    )
    assert login.status_code == 200, login.text
    # The whole document renders first; on a loaded machine that takes a while.
    page.goto(f"{gateway_url}/docs/", timeout=4 * RENDER_TIMEOUT_MS)
    page.locator(".opblock").first.wait_for(state="visible", timeout=4 * RENDER_TIMEOUT_MS)
    page.locator("button.authorize").first.click(timeout=RENDER_TIMEOUT_MS)
    dialog = page.locator(".modal-ux")
    dialog.locator("input").first.fill(login.json()["access_token"])
    dialog.locator("button.authorize").click()
    dialog.locator("button.btn-done").click()

    me = operation(page, "get", "/v1/users/me")
    me.locator(".opblock-summary").click()
    me.locator("button.try-out__btn").click()
    me.locator("button.execute").click()
    status = me.locator(".live-responses-table tr.response .response-col_status").first
    status.wait_for(state="visible", timeout=RENDER_TIMEOUT_MS)
    assert status.inner_text().strip() == "200"
    assert "admin@example.com" in me.locator(".live-responses-table").inner_text()
