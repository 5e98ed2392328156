"""Shared pytest set-up: register the `site` marker (browser checks of the built site, tests/test_site.py)."""


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "site: browser checks of the built site (needs GH_SITE_DIR=_build/html and chromium)"
    )
