"""Shared fixtures. Tests read the HC18 data at ../shared/data/hc18 when it is there."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HC18 = ROOT.parent / "shared" / "data" / "hc18"
SAMPLES = ROOT / "samples"


@pytest.fixture(scope="session")
def hc18() -> Path:
    if not (HC18 / "ellipses.csv").is_file():
        pytest.skip("HC18 data not found at ../shared/data/hc18")
    return HC18


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    return SAMPLES
