"""Shared pytest set-up: one torch thread for the whole run, and the `site` marker.

The models under test are tiny: a second intra-op thread gains nothing, and on a busy 2-core machine its
spin-waiting makes every small op several times slower. The thread count is restored when the run ends.
"""

import pytest
import torch


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "site: browser checks of the built site (needs GH_SITE_DIR=_build/html and chromium)"
    )


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
