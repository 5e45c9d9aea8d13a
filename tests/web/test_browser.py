"""The console and the member portal in a real browser (headless Chromium through Playwright), against a
real server with its job worker and a real SMTP server.

Admin: sign in, dashboard charts, an earning rule written in the editor, an API key created in the console,
an order sent through the API with it, and the points it earned on the customer 360.
Member (phone-sized screen): a magic link travels through SMTP, the member signs in with a button (opening
the link spends nothing), redeems a reward after a confirmation step and gets the coupon with its QR code;
the service worker keeps an offline shell and never stores a signed-in page or an API answer.
Accessibility is checked with axe-core on each page; screenshots at phone and desktop widths.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from tests.conftest import make_tenant
from tests.web import analytics_data, seed
from tests.web.browser import both_widths, check_accessibility, new_context
from tests.web.live import Live, eventually

RULES = {"stacking": "multiply", "rules": [
    {"key": "base", "name": "10 points per euro", "trigger": "order",
     "effect": {"type": "per_currency", "points": 10}},
]}


def test_admin_writes_a_rule_and_an_api_order_earns_points(live: Live, browser: Any) -> None:
    tenant = make_tenant(live.db, "shop")
    analytics_data.store(live.db, tenant.workspace_id)
    with httpx.Client(base_url=live.url, headers=tenant.headers, timeout=10) as admin_api:  # points available at once
        assert admin_api.put("/api/v1/loyalty/settings", json={"return_window_days": 0}).status_code == 200
    context = new_context(browser)
    page = context.new_page()

    page.goto(f"{live.url}/login")
    check_accessibility(page, "login")
    both_widths(page, "console-login", live)
    page.get_by_label("Email").fill(tenant.owner_email)
    page.get_by_label("Password").fill(tenant.owner_password)
    page.get_by_role("button", name="Sign in").click()

    page.wait_for_selector("body[data-charts-ready]")
    assert int(page.get_attribute("body", "data-charts-ready") or 0) >= 5
    assert page.locator(".tile").count() == 8
    # The liability card shows the latest snapshot; "Recompute now" queues one and the card polls (HTMX)
    # until the worker has stored it.
    page.locator("#liability").get_by_role("button", name="Recompute now").click()
    page.wait_for_selector("#liability dl", timeout=20_000)
    assert "As of" in page.inner_text("#liability-as-of")
    check_accessibility(page, "dashboard")
    page.evaluate("window.scrollTo(0, 0)")  # the screenshots show the top of the page
    both_widths(page, "console-dashboard", live)

    # An earning rule, written in the JSON editor: a mistake is shown inline, then fixed.
    page.goto(f"{live.url}/console/program/rules")
    page.get_by_label("Name", exact=True).fill("Base program")
    editor = page.locator("#document")
    editor.fill('{"rules": [{"key": "Base!"}]}')
    page.wait_for_selector("#rule-errors .error-box")
    assert "rules.0.key" in page.inner_text("#rule-errors")
    editor.fill(json.dumps(RULES, indent=2))
    page.wait_for_selector("#rule-errors .ok-text")
    page.get_by_role("button", name="Create draft").click()
    page.get_by_role("heading", name="Base program").wait_for()
    page.get_by_label("Order amount").fill("42")
    page.get_by_role("button", name="Preview").click()
    page.wait_for_selector("#preview-result .big-result")
    assert "420" in page.inner_text("#preview-result")
    both_widths(page, "console-rules-editor", live)
    page.get_by_role("button", name="Publish version 1").click()
    page.get_by_role("status").filter(has_text="Published").wait_for()

    # An API key: its secret is shown once, on the page that created it.
    page.goto(f"{live.url}/console/settings/api-keys")
    page.get_by_label("Name", exact=True).fill("Online shop")
    page.get_by_role("button", name="Create key").click()
    secret = page.inner_text("#new-secret").strip()
    assert secret.startswith("pat_")

    headers = {"Authorization": f"Bearer {secret}"}
    with httpx.Client(base_url=live.url, headers=headers, timeout=10) as api:
        created = api.post("/api/v1/customers", json={"external_id": "c-100", "email": "carla@example.com",
                                                      "first_name": "Carla", "last_name": "Rossi"})
        assert created.status_code == 201, created.text
        customer_id = created.json()["id"]
        sent = api.post("/api/v1/orders", json=seed.order("web-1001", "c-100", total="42.00"))
        assert sent.status_code == 201, sent.text

    def earned() -> bool:
        page.goto(f"{live.url}/console/customers/{customer_id}")
        return page.inner_text("#points-available").strip() == "420"

    eventually(earned, timeout=30, interval=0.3)  # the worker awards the points in the background
    assert "Carla Rossi" in page.inner_text("h1")
    check_accessibility(page, "customer 360")
    both_widths(page, "console-customer-360", live)
    context.close()


LINK = re.compile(r"https?://[^/\s]+(/portal/[a-z0-9-]+/auth/[A-Za-z0-9_-]+)")
CACHED_PATHS = """async () => {
    const paths = [];
    for (const name of await caches.keys()) {
        const cache = await caches.open(name);
        for (const request of await cache.keys()) { const u = new URL(request.url); paths.push(u.pathname + u.search); }
    }
    return paths;
}"""


def test_member_signs_in_by_magic_link_and_redeems_a_reward(live: Live, browser: Any) -> None:
    tenant = make_tenant(live.db, "corner")
    with httpx.Client(base_url=live.url, headers=tenant.headers, timeout=10) as api:
        seed.setup_program(api, tenant.headers)
        assert api.put("/api/v1/tiers/program", json={"metric": "spend", "window": "lifetime"}).status_code == 200
        for name, threshold in (("Bronze", 0), ("Silver", 100), ("Gold", 500)):
            assert api.post("/api/v1/tiers", json={"name": name, "threshold": threshold}).status_code == 201
        customer_id = seed.customer(api, tenant.headers, "m-1", "marta@example.com")
        assert api.post("/api/v1/orders", json=seed.order("shop-1", "m-1", total="34.90")).status_code == 201
        eventually(lambda: api.get(f"/api/v1/customers/{customer_id}/points").json()["available"] == 349)
    context = new_context(browser, phone=True)
    page = context.new_page()

    page.goto(f"{live.url}/portal/{tenant.slug}/")
    page.get_by_role("heading", name="Your Corner rewards").wait_for()  # not signed in: the sign-in page
    check_accessibility(page, "portal sign-in")
    page.get_by_label("Email address").fill("marta@example.com")
    page.get_by_role("button", name="Email me a sign-in link").click()
    page.get_by_role("heading", name="Check your email").wait_for()

    message = live.inbox.wait_for("marta@example.com")
    html = message.get_body(("html",))
    assert html is not None and "#3b4cca" in html.get_content()  # the workspace's brand colour, inline
    plain = message.get_body(("plain",))
    assert plain is not None
    found = LINK.search(plain.get_content())
    assert found, plain.get_content()
    page.goto(live.url + found.group(1))
    page.get_by_role("button", name="Sign in").click()

    page.get_by_role("heading", name="Hi Ana").wait_for()
    assert page.inner_text("#points-available") == "349"
    assert "more to reach Silver" in page.inner_text("#tier-progress")
    page.get_by_role("button", name="Get my invite link").click()
    invite = page.get_by_label("Your invite link").input_value()
    assert "/r/" in invite
    assert "wa.me" in (page.get_by_role("link", name=re.compile("WhatsApp")).get_attribute("href") or "")
    page.evaluate("async () => { await navigator.serviceWorker.ready; }")
    check_accessibility(page, "portal home")
    both_widths(page, "portal-home", live)

    page.get_by_role("link", name="Redeem 5 € off").click()
    page.get_by_role("heading", name="5 € off").wait_for()
    check_accessibility(page, "portal redeem confirmation")
    both_widths(page, "portal-redeem-confirm", live)
    page.get_by_role("button", name=re.compile("Confirm: redeem for 100 points")).click()

    page.get_by_text("Redeemed! Enjoy your reward.").wait_for()
    code = page.inner_text("#coupon-code").strip()
    assert re.fullmatch(r"[A-Z0-9]{4}(-[A-Z0-9]{4}){2}", code), code
    assert page.locator(".qr-box svg.qr title").count() == 1
    check_accessibility(page, "portal coupon")
    both_widths(page, "portal-coupon", live)

    page.goto(f"{live.url}/portal/{tenant.slug}/")
    assert page.inner_text("#points-available") == "249"
    cached = page.evaluate(CACHED_PATHS)
    assert cached, "the service worker cached its offline shell"
    assert all(p.startswith(("/static/", f"/portal/{tenant.slug}/offline")) for p in cached), cached

    context.set_offline(True)  # no network: the service worker answers with the offline page
    page.goto(f"{live.url}/portal/{tenant.slug}/history")
    page.get_by_role("heading", name="You are offline").wait_for()
    context.set_offline(False)
    context.close()


def test_a_friend_opens_the_referral_link_on_a_phone(live: Live, browser: Any) -> None:
    from patronage.referrals import service as referrals

    tenant = make_tenant(live.db, "bakery")
    with httpx.Client(base_url=live.url, headers=tenant.headers, timeout=10) as api:
        assert api.put("/api/v1/referrals/program", json={
            "welcome_points": 200, "welcome_trigger": "first_order", "referrer_points": 300,
            "signup_url": "https://bakery.example.com/register"}).status_code == 200
        customer_id = seed.customer(api, tenant.headers, "r-1", "rita@example.com")
    with live.db.unit_of_work() as session:
        code = referrals.ensure_code(session, tenant.workspace_id, customer_id).code
    context = new_context(browser, phone=True)
    page = context.new_page()

    page.goto(f"{live.url}/r/{code}")
    page.get_by_role("heading", name="Ana invites you to Bakery").wait_for()
    assert page.inner_text("#invite-offer") == "200 points for you"
    claim = page.get_by_role("link", name="Sign up and claim it")
    assert claim.get_attribute("href") == f"https://bakery.example.com/register?ref={code}"
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # no sideways scrolling
    check_accessibility(page, "referral landing")
    both_widths(page, "portal-referral-landing", live)
    page.goto(f"{live.url}/r/{code}?lang=pl")
    page.get_by_role("heading", name="Ana zaprasza Cię do Bakery").wait_for()

    missing = page.goto(f"{live.url}/r/NOT-A-CODE")
    assert missing is not None and missing.status == 404
    page.get_by_role("heading", name="This invitation link does not work").wait_for()
    check_accessibility(page, "referral landing, unknown code")
    with httpx.Client(base_url=live.url, headers=tenant.headers, timeout=10) as api:
        # Two visits of one browser: one click (counted just after the first page was served).
        eventually(lambda: api.get("/api/v1/referrals/stats").json()["clicks"] == 1)
    context.close()
