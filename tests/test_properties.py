"""Property-based tests (hypothesis) of the survival target.

Geometry, label-map and file-name properties live in tests/test_io_hardening.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hybridrad.errors import CohortValidationError, EventError, SurvivalTimeError
from hybridrad.models.target import survival_target

times = st.floats(min_value=0, max_value=1e4, allow_nan=False, allow_infinity=False)
events = st.sampled_from([0, 1, True, False, 0.0, 1.0])


@given(st.lists(st.tuples(times, events), min_size=1, max_size=30))
def test_survival_target_keeps_every_valid_value(rows: list[tuple[float, object]]) -> None:
    ids = [f"c{i:03d}" for i in range(len(rows))]
    clinical = pd.DataFrame(
        {"t": [t for t, _ in rows], "e": [e for _, e in rows]}, index=pd.Index(ids)
    )
    if not any(bool(e) for _, e in rows):  # a survival model needs an event: refused
        with pytest.raises(CohortValidationError, match="no events in column 'e'"):
            survival_target(clinical, "t", "e")
        return
    y = survival_target(clinical, "t", "e", ids[::-1])  # in the order asked for
    assert y.dtype.names == ("event", "time")
    assert np.array_equal(y["time"], np.array([t for t, _ in rows][::-1], dtype=float))
    assert np.array_equal(y["event"], np.array([bool(e) for _, e in rows][::-1]))


@given(
    st.lists(st.tuples(times, events), min_size=2, max_size=20),
    st.data(),
)
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_survival_target_refuses_any_bad_value(
    rows: list[tuple[object, object]], data: st.DataObject
) -> None:
    ids = [f"c{i}" for i in range(len(rows))]
    which = data.draw(st.integers(0, len(rows) - 1))
    column = data.draw(st.sampled_from(["t", "e"]))
    bad = data.draw(
        st.sampled_from(["ten", -1.0, float("inf"), "-"])
        if column == "t"
        else st.sampled_from([2, -1, 0.5, "yes", "dead"])
    )
    table = pd.DataFrame({"t": [t for t, _ in rows], "e": [e for _, e in rows]}, index=ids)
    table = table.astype(object)
    table.loc[ids[which], column] = bad
    with pytest.raises(CohortValidationError) as info:
        survival_target(table, "t", "e")
    kinds = {type(p) for p in info.value.problems}
    assert kinds == {SurvivalTimeError if column == "t" else EventError}
    assert repr(ids[which]) in str(info.value)
