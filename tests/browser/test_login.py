from tests.browser.conftest import login, screenshot


def test_an_operator_logs_in_and_sees_the_console(page, portal):
    login(page, portal)
    assert "Log in" not in page.title()
    assert page.locator("text=x3-to-sn").first.is_visible() or page.locator("text=Integrations").first.is_visible()
    assert screenshot(page, "after-login").exists()
