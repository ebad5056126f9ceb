"""The figures `local up` publishes for `status --local`: differences of the tally's totals over
the last 10 s (dials) and 5 minutes (deferrals by reason)."""

from __future__ import annotations

from dialctl.activity import DEFERRALS_WINDOW_S, Sample, Window, decode, encode


def window_of(*samples: tuple[float, int, dict]) -> Window:
    window = Window()
    for at, dials, deferrals in samples:
        window.add(Sample(at, dials, deferrals))
    return window


def test_dials_are_counted_over_the_last_10_s_and_deferrals_over_5_minutes():
    samples = [(t, 3 * t, {"rate": t, "stopped": 40 if t >= 100 else 0}) for t in range(0, 401)]
    figures = window_of(*samples).figures()
    assert (figures["dials"], figures["dials_seconds"]) == (30, 10)
    assert figures["deferred"] == {"rate": 300} and figures["deferred_seconds"] == DEFERRALS_WINDOW_S


def test_a_young_run_counts_since_its_start_and_says_over_how_long():
    figures = window_of((0.0, 0, {}), (1.0, 2, {}), (2.5, 7, {"live_calls": 4})).figures()
    assert figures == {"dials": 7, "dials_seconds": 2.5, "deferred": {"live_calls": 4}, "deferred_seconds": 2.5}


def test_only_one_sample_older_than_the_longest_window_is_kept():
    window = window_of(*[(float(t), t, {}) for t in range(0, 1000)])
    assert len(window._samples) == DEFERRALS_WINDOW_S + 1


def test_the_hash_reads_back_as_the_status_parts():
    figures = {"dials": 42, "dials_seconds": 10.0, "deferred": {"rate": 5, "stopped": 1}, "deferred_seconds": 300.0}
    fields = {k.encode(): v.encode() for k, v in encode(figures, published_at=1000.0).items()}  # as Redis returns
    parts = decode(fields, now=1001.25)
    assert parts is not None
    assert parts["measured_cps"] | {"source": ""} == {
        "calls_per_second": 4.2, "dials": 42, "window_seconds": 10.0, "age_seconds": 1.2, "source": "",
    }  # fmt: skip
    assert parts["deferred"]["by_reason"] == {"rate": 5, "stopped": 1} and parts["deferred"]["total"] == 6
    assert decode({}, now=0) is None
