"""Audit statistics against hand-computed values, with scorers simple enough to do by hand."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from prefloop.model import ModelConfig, RewardEnsemble
from prefloop.model.audit import Scorer, ensemble_scorer, response_features, run_audit
from prefloop.model.audit_report import write_audit_report
from prefloop.model.probes import Probe

SHOUT = Probe("shout", str.upper, "upper-case the response", "rewards shouting")

# unprobed and probed rewards of four pairs (a, b), chosen so each case shows once:
#   good/bad:      loser bad, BAD (3) > good (2)              → flip
#   fine/poorer:   loser poorer, POORER (0.5) < fine (1)      → no flip
#   same1/same2:   equal rewards, no loser                    → not counted in the flip rate
#   low/high:      loser low, LOW (1) = high (1), not above   → no flip
REWARDS = {
    "good": 2.0, "GOOD": 2.0, "bad": 0.0, "BAD": 3.0,
    "fine": 1.0, "FINE": 1.0, "poorer": 0.5, "POORER": 0.5,
    "same1": 1.0, "SAME1": 5.0, "same2": 1.0, "SAME2": 1.0,
    "low": 0.0, "LOW": 1.0, "high": 1.0, "HIGH": 2.0,
}  # fmt: skip
PAIRS = [("p1", "good", "bad"), ("p2", "fine", "poorer"), ("p3", "same1", "same2"), ("p4", "low", "high")]


def table_scorer(items: Sequence[tuple[str, str]]) -> np.ndarray:
    return np.array([REWARDS[text] for _prompt, text in items])


def length_scorer(items: Sequence[tuple[str, str]]) -> np.ndarray:
    return np.array([float(len(text)) for _prompt, text in items])


def test_mean_shift_flip_rate_and_shares_by_hand() -> None:
    result = run_audit(PAIRS, table_scorer, probes=[SHOUT], resamples=500, seed=1)
    (shout,) = result.probes
    # shifts: good 0, bad +3, fine 0, poorer 0, same1 +4, same2 0, low +1, high +1 → 9 / 8
    assert shout.mean_shift == pytest.approx(9 / 8)
    assert shout.flip_rate == pytest.approx(1 / 3), "one flip among the three pairs with a strict ranking"
    assert shout.n_flippable == 3 and result.n_tied_pairs == 1
    assert shout.share_increased == pytest.approx(4 / 8)
    # unprobed rewards 2, 0, 1, 0.5, 1, 1, 0, 1: mean 0.8125, population variance 2.96875 / 8
    assert result.reward_mean == pytest.approx(0.8125)
    assert shout.shift_in_sd == pytest.approx((9 / 8) / math.sqrt(2.96875 / 8))
    assert shout.ci is not None and shout.ci[0] <= shout.mean_shift <= shout.ci[1]
    assert shout.flip_ci is not None and shout.flip_ci[0] <= 1 / 3 <= shout.flip_ci[1]
    # upper-casing keeps every length, so nothing of the shift is explained by length
    assert shout.shift_beyond_length == pytest.approx(9 / 8)
    assert shout.flip_ci[0] >= 0 and shout.flip_ci[1] <= 1


def test_length_correlation_and_prefers_longer_by_hand() -> None:
    result = run_audit(PAIRS, table_scorer, probes=[SHOUT], resamples=200)
    # lengths 4, 3, 4, 6, 5, 5, 3, 4 (mean 4.25): Σdx·dy = 1.375, Σdx² = 7.5, Σdy² = 2.96875
    assert result.length_correlation.r == pytest.approx(1.375 / math.sqrt(7.5 * 2.96875))
    assert result.length_correlation.n == 8
    assert result.length_slope == pytest.approx(1.375 / 7.5), "least squares: Σdx·dy / Σdx²"
    # winners: good (4 > 3, longer), fine (4 < 6, shorter), high (4 > 3, longer); same1/same2 tie
    assert result.prefers_longer == pytest.approx(2 / 3)
    ci = result.length_correlation.ci
    assert ci is not None and -1 <= ci[0] <= ci[1] <= 1


def test_a_constant_edit_under_a_length_scorer_shifts_every_response_by_its_length() -> None:
    pairs = [("p", "Hi.", "Hello there."), ("p", "Yes. No.", "Ok"), ("p", "abc", "xyz")]
    result = run_audit(pairs, length_scorer, resamples=100, extrapolation_limit=None)
    by_name = {p.name: p for p in result.probes}
    refusal = by_name["refusal_prefix"]
    # "I'm sorry, but I can't help with that." is 38 characters, plus the space before the response
    assert refusal.mean_shift == 39.0 and refusal.ci == (39.0, 39.0) and refusal.share_increased == 1.0
    # losers Hi. (3) and Ok (2) grow to 42 and 41, past Hello there. (12) and Yes. No. (8); abc/xyz tie
    assert refusal.flip_rate == 1.0 and refusal.n_flippable == 2
    # bullets: "- Hi." +2, "- Hello there." +2, "- Yes.\n- No." +4, "- Ok" +2, "- abc" +2, "- xyz" +2
    listed = by_name["markdown_list"]
    assert listed.mean_shift == pytest.approx(14 / 6)
    assert listed.flip_rate == 0.0, "5 < 12 and 4 < 8"
    # repetition doubles a one-line response plus one space: +4, +13, +9, +3, +4, +4
    assert by_name["repeat_sentences"].mean_shift == pytest.approx(37 / 6)
    # reward = length: the slope is 1 and length explains every shift exactly
    assert result.length_slope == pytest.approx(1.0)
    for probe in result.probes:
        assert probe.shift_beyond_length == pytest.approx(0.0, abs=1e-9), probe.name


def test_beyond_length_is_withheld_when_the_edit_is_far_outside_the_lengths_seen() -> None:
    pairs = [("p", "Hi.", "Hello there."), ("p", "Yes. No.", "Ok"), ("p", "abc", "xyz")]
    by_name = {p.name: p for p in run_audit(pairs, length_scorer, resamples=10).probes}
    # lengths 3, 12, 8, 2, 3, 3: sd = sqrt(78.8333 / 6) = 3.62, so the limit is 7.25 characters
    assert by_name["refusal_prefix"].shift_beyond_length is None, "39 characters added"
    assert by_name["markdown_list"].shift_beyond_length == pytest.approx(0.0, abs=1e-9), "14 / 6 added"


def test_intervals_are_seeded() -> None:
    first = run_audit(PAIRS, table_scorer, probes=[SHOUT], resamples=300, seed=7)
    again = run_audit(PAIRS, table_scorer, probes=[SHOUT], resamples=300, seed=7)
    other = run_audit(PAIRS, table_scorer, probes=[SHOUT], resamples=300, seed=8)
    assert first.probes[0].ci == again.probes[0].ci and first.probes[0].flip_ci == again.probes[0].flip_ci
    assert first.probes[0].ci != other.probes[0].ci


def test_the_scorer_sees_each_distinct_item_once() -> None:
    seen: list[tuple[str, str]] = []

    def counting(items: Sequence[tuple[str, str]]) -> np.ndarray:
        seen.extend(items)
        return length_scorer(items)

    scorer: Scorer = counting
    run_audit([("p", "x.", "y."), ("p", "x.", "y.")], scorer, probes=[SHOUT], resamples=10)
    assert sorted(seen) == [("p", "X."), ("p", "Y."), ("p", "x."), ("p", "y.")]


def test_response_features_count_lines_lists_and_markdown() -> None:
    text = "# Title\n- one\n2. two\n**bold** and `code`"
    assert response_features(text) == {"length": 40.0, "newlines": 3.0, "list_markers": 2.0, "markdown": 3.0}
    assert response_features("plain")["markdown"] == 0.0


def test_constant_feature_has_no_correlation() -> None:
    result = run_audit(PAIRS, table_scorer, probes=[SHOUT], resamples=50)
    newlines = {c.feature: c for c in result.format_correlations}["newlines"]
    assert newlines.r is None and newlines.ci is None, "no response has a newline"


def test_report_files_and_json_keys(tmp_path: Path) -> None:
    result = run_audit(PAIRS, table_scorer, probes=[SHOUT], resamples=50)
    files = write_audit_report(result, tmp_path / "out", "rm-test", "pairs.jsonl")
    assert Path(files["plot"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = Path(files["report"]).read_text()
    assert "| shout | upper-case the response | +1.125 |" in report and "33.3 %" in report
    data = result.to_dict()
    assert {"name", "mean_shift", "flip_rate", "ci"} <= set(data["probes"][0])
    assert isinstance(data["probes"][0]["ci"], list)


@pytest.mark.slow
def test_ensemble_scorer_gives_the_rewards_predict_gives(heads_config: ModelConfig) -> None:
    """A real MiniLM heads ensemble: a response's audit reward is its mean calibrated reward in any pair."""
    from model_toydata import make_examples, pairs_of

    ens, _ = RewardEnsemble.train(make_examples(32), heads_config, progress=False)
    pairs = pairs_of(make_examples(5, seed=3, offset=500))
    pred = ens.predict(pairs)
    scorer = ensemble_scorer(ens)
    assert np.allclose(scorer([(p, a) for p, a, _ in pairs]), pred.reward_a)
    assert np.allclose(scorer([(p, b) for p, _, b in pairs]), pred.reward_b)
    result = run_audit(pairs, scorer, probes=[SHOUT], resamples=20)
    assert result.n_pairs == 5 and result.probes[0].n_responses == 10
