import os
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "policygen" / "data"


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true", help="rewrite golden files instead of comparing")


@pytest.fixture
def update_golden(request) -> bool:
    return bool(request.config.getoption("--update-golden") or os.environ.get("NETGUARD_UPDATE_GOLDEN"))


@pytest.fixture
def bookinfo_data() -> Path:
    return DATA
