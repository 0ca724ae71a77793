import os

import numpy as np
import pytest

os.environ.setdefault("COBENEFITS_CACHE_DIR", os.path.join(os.path.dirname(__file__), "..", ".cache-test"))


def pytest_collection_modifyitems(config, items):
    # slow tests run only with -m slow (explicitly selected)
    if config.getoption("-m"):
        return
    skip = pytest.mark.skip(reason="slow; run with -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
