"""The IBSI 1 conformance table comes out identical with either feature engine.

For every IBSI data set of ``benchmarks/ibsi_table.py`` (digital phantom, CT phantom
configurations A-E), the table built with ``engine: native`` has the same rows, the same
verdicts and values equal to pyradiomics' to relative 1e-6
(:func:`hybridrad.features.engine.parity.agrees`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest

from benchmarks.ibsi_table import (
    BENCHMARK_CONFIGS,
    compare_with_reference,
    load_reference,
    run_benchmark_config,
)
from hybridrad.features.engine.parity import agrees

logging.getLogger("radiomics").setLevel(logging.ERROR)
pytestmark = [
    pytest.mark.data,
    pytest.mark.filterwarnings(
        "ignore:the load_module\\(\\) method is deprecated:DeprecationWarning"
    ),
]


@pytest.fixture(scope="module")
def ibsi_dir(data_dir: Path) -> Path:
    folder = data_dir / "ibsi"
    if not folder.is_dir():
        pytest.skip("IBSI reference data absent")
    return folder


@pytest.mark.parametrize("config", BENCHMARK_CONFIGS, ids=lambda c: c.name)
def test_ibsi_table_is_identical_with_either_engine(ibsi_dir: Path, config) -> None:
    reference = load_reference(ibsi_dir)
    tables = {
        engine: compare_with_reference(
            run_benchmark_config(ibsi_dir, config, engine), reference, config.name
        )
        for engine in ("pyradiomics", "native")
    }
    pyr, nat = tables["pyradiomics"], tables["native"]
    keys = ["ibsi_code", "aggregation"]
    assert pyr[keys].equals(nat[keys])
    pd.testing.assert_series_equal(pyr["verdict"], nat["verdict"])
    ok = agrees(pyr["measured"].to_numpy(float), nat["measured"].to_numpy(float))
    assert ok.all(), pd.concat([pyr[keys], pyr["measured"], nat["measured"]], axis=1)[~ok]
