"""Facts files: validation with clean errors, evaluation exactly at dates, ``sim score``.

A count by date D is read from runs to the end of D; a window is the difference of two such
counts run by run; a topic's state is its outcome at the end of D. These tests hold that to
the dated trace of each run, show that the scenario's horizon plays no part, and check the
stored forecasts of questions and the command line (exit 2, path and line on bad input).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from helpers_results import SCENARIOS, assert_clean_error, sim_cli

from sim.cli import main
from sim.errors import InputError
from sim.facts import Forecast, Item, check_fits, evaluate, horizons, load_facts
from sim.hindcast import scorecard
from sim.model import simulate
from sim.montecarlo import run
from sim.scenario import load_scenario

FACTS = SCENARIOS / "facts" / "hindcast_2025.yaml"
HINDCAST = SCENARIOS / "hindcast_2025.yaml"
S = load_scenario(HINDCAST)
RUNS = 40
#: The hindcast without uncertain inputs: its job's runs are the runs simulate() plays
PINNED = load_scenario(SCENARIOS.parent / "tests" / "data" / "pinned" / "hindcast_2025.yaml")


def d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def write(tmp_path: Path, text: str, name: str = "facts.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def cli(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def refused(result, *needles: str) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in result.output, (needle, result.output)
    return result.output


# --- the shipped record -----------------------------------------------------------------------


def test_the_dated_record_of_2025_loads_and_fits_the_hindcast():
    facts = load_facts(FACTS)
    assert len(facts) == 14 and len(facts.facts) == 14 and not facts.questions
    counts = [i for i in facts if not i.yes_no]
    assert len(counts) == 8
    assert all(i.source for i in facts), "every fact says where it comes from"
    assert all(i.reference_rate is not None and "reference:" in i.source for i in counts), \
        "every count states its reference rate and where it comes from"
    assert all(S.start < i.end < S.end for i in facts), "inside the hindcast's window"
    check_fits(facts, S)
    by = {i.label: i for i in facts}
    assert by["Irritant consultation rounds held"].by == d("2025-04-10")
    assert by["Leaders' summits held"].by == d("2025-08-15")
    assert (by["Leaders' phone calls held"].by, by["Leaders' phone calls held"].observed) == (
        d("2025-10-16"), 8)
    assert by["Embassy operations agreed"].observed is True


# --- evaluation at dates --------------------------------------------------------------------


def test_a_count_by_a_date_is_the_column_of_runs_to_the_end_of_that_date():
    item = Item(label="rounds", track="irritants", count="held", by=d("2025-04-10"))
    values = evaluate(S, [item], runs=RUNS, seed=S.seed, workers=1)["rounds"]
    to_date = S.model_copy(update={"horizon_days": S.day_of(d("2025-04-10")) + 1})
    direct = run(to_date, runs=RUNS, workers=1).column("irritants.held")
    np.testing.assert_array_equal(values, direct)


def events_on(trace, source: str, kind: str, first: int, last: int) -> int:
    return sum(1 for e in trace if e.source == source and e.kind == kind
               and first <= int(e.day) <= last and "window missed" not in e.text)


def test_counts_windows_and_states_match_each_runs_dated_trace():
    a, b, c = d("2025-03-01"), d("2025-06-30"), d("2025-09-15")
    items = [
        Item(label="calls by b", track="calls", count="held", by=b),
        Item(label="calls a-c", track="calls", **{"from": a}, to=c, count="held"),
        Item(label="ministers from the start", track="ministers", count="held",
             **{"from": PINNED.start}, to=b),
        Item(label="escalations a-b", shock="escalation", **{"from": a}, to=b),
        Item(label="embassy agreed by c", topic="embassy", state="agreed", by=c),
        Item(label="prisoners none by b", topic="prisoners", state="none", by=b),
        Item(label="prisoners above 0.6", topic="prisoners", value_above=0.6, by=c),
    ]
    values = evaluate(PINNED, items, runs=RUNS, seed=PINNED.seed, workers=1)
    far = PINNED.model_copy(update={"horizon_days": 700})  # beyond every date: it only truncates
    day = PINNED.day_of
    for i in range(RUNS):
        out = simulate(far, run=i, trace=True)
        t = out.trace
        assert values["calls by b"][i] == events_on(t, "calls", "held", 0, day(b))
        assert values["calls a-c"][i] == events_on(t, "calls", "held", day(a), day(c))
        assert values["ministers from the start"][i] == events_on(t, "ministers", "held", 0, day(b))
        assert values["escalations a-b"][i] == events_on(t, "escalation", "shock", day(a), day(b))
        agreed_on = int(out["embassy.day"]) if out["embassy.outcome"] == 1 else None
        assert values["embassy agreed by c"][i] == (agreed_on is not None and agreed_on <= day(c))
        settled_on = int(out["prisoners.day"]) if out["prisoners.outcome"] != 0 else None
        assert values["prisoners none by b"][i] == (settled_on is None or settled_on > day(b))
        above = (out["prisoners.outcome"] == 1 and int(out["prisoners.day"]) <= day(c)
                 and out["prisoners.value"] > 0.6)
        assert values["prisoners above 0.6"][i] == above


def test_with_sampled_inputs_a_state_on_a_date_is_what_a_longer_run_settled_by_then():
    c = d("2025-09-15")
    items = [Item(label=t, topic=t, state="agreed", by=c) for t in ("start", "prisoners", "embassy")]
    values = evaluate(S, items, runs=200, seed=S.seed, workers=1)
    far = run(S.model_copy(update={"horizon_days": 700}), runs=200, workers=1)
    for t in ("start", "prisoners", "embassy"):
        day = far.column(f"{t}.day")
        agreed = (far.column(f"{t}.outcome") == 1) & (np.floor(day) <= S.day_of(c))
        np.testing.assert_array_equal(values[t], agreed)
    assert any(v.any() for v in values.values()), "the test needs agreements before the date"


def test_the_horizons_needed_are_the_ends_of_the_dates_and_of_the_days_before_windows():
    items = [Item(label="a", shock="escalation", by=d("2025-02-01")),
             Item(label="b", shock="escalation", **{"from": d("2025-03-01")}, to=d("2025-04-01")),
             Item(label="c", shock="escalation", **{"from": S.start}, to=d("2025-02-01"))]
    assert horizons(S, items) == [S.day_of(d("2025-02-01")) + 1, S.day_of(d("2025-03-01")),
                                  S.day_of(d("2025-04-01")) + 1]


def test_a_fact_dated_inside_the_horizon_scores_the_same_whatever_the_horizon():
    facts = load_facts(FACTS)
    cards = [scorecard(S.model_copy(update={"horizon_days": h}), facts, runs=RUNS, seed=S.seed,
                       workers=1).to_dict() for h in (S.horizon_days, 300, 2000)]
    for card in cards[1:]:
        assert card["facts"] == cards[0]["facts"]
        assert card["totals"] == cards[0]["totals"]


def test_a_date_beyond_the_horizon_is_evaluated_by_running_further():
    short = S.model_copy(update={"horizon_days": 30})
    item = Item(label="calls", track="calls", count="held", by=d("2025-10-16"))
    ours = evaluate(short, [item], runs=RUNS, seed=S.seed, workers=1)["calls"]
    assert ours.max() > 0
    full = run(S.model_copy(update={"horizon_days": S.day_of(d("2025-10-16")) + 1}), runs=RUNS,
               workers=1)
    np.testing.assert_array_equal(ours, full.column("calls.held"))


def test_a_results_folder_scores_like_its_scenario(tmp_path):
    folder = tmp_path / "job"
    run(S, runs=RUNS, workers=1, out=folder)
    from_folder = refusal_free(cli("score", folder, "--facts", FACTS, "--out", tmp_path / "a",
                                   "-w", "1"))
    refusal_free(cli("score", HINDCAST, "--facts", FACTS, "--runs", RUNS,
                     "--out", tmp_path / "b", "-w", "1"))
    # the facts on 31 October (the folder's last day) are read from its runs, the others
    # from runs of the same job to their dates: together, what the scenario gives
    assert S.day_of(d("2025-10-31")) + 1 == S.horizon_days
    a = json.loads((tmp_path / "a" / "score.json").read_text())
    b = json.loads((tmp_path / "b" / "score.json").read_text())
    assert a["facts"] == b["facts"] and a["totals"] == b["totals"]
    assert "of 14 facts fall inside the central 90%" in from_folder


def test_dates_at_a_folders_last_day_are_read_from_its_runs_without_running(monkeypatch):
    res = run(S, runs=RUNS, workers=1)
    import sim.montecarlo

    def no_runs(*args, **kwargs):
        raise AssertionError("nothing should run")

    monkeypatch.setattr(sim.montecarlo, "run_jobs", no_runs)
    item = Item(label="x", track="parliament", count="held", by=d("2025-10-31"))
    values = evaluate(S, [item], runs=RUNS, seed=S.seed, have={S.horizon_days: res})
    np.testing.assert_array_equal(values["x"], res.column("parliament.held"))


def refusal_free(result) -> str:
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


# --- forecasts: intervals and probabilities ---------------------------------------------------


def test_a_forecasts_intervals_are_the_inverted_empirical_cdf_of_the_runs():
    rng = np.random.default_rng(3)
    runs = rng.poisson(2.3, 500)
    f = Forecast.of(Item(label="x", shock="escalation", by=d("2025-02-01")), runs, {})
    assert f.interval(0.9) == tuple(np.quantile(runs, [0.05, 0.95], method="inverted_cdf"))
    assert f.interval(0.5) == tuple(np.quantile(runs, [0.25, 0.75], method="inverted_cdf"))
    assert f.mean() == pytest.approx(runs.mean())
    yes = Forecast.of(Item(label="y", topic="start", state="agreed", by=d("2025-02-01")),
                      runs > 2, {})
    assert yes.p_yes == pytest.approx(np.mean(runs > 2))


# --- bad facts files: every problem, with its line -------------------------------------------


def problems_of(tmp_path: Path, text: str) -> tuple[Path, str]:
    path = write(tmp_path, text)
    with pytest.raises(InputError) as exc:
        load_facts(path)
    return path, str(exc.value)


def test_every_problem_in_a_facts_file_is_reported_at_once_with_its_line(tmp_path):
    text = ("facts:\n"
            "  - {label: a, track: calls, count: held, by: 2025-03-01, observed: yes}\n"
            "  - {label: b, topic: start, state: agreed, by: 2025-03-01, observed: 2}\n"
            "  - {label: c, track: calls, count: met, by: 2025-03-01}\n"
            "  - {label: d, shock: escalation, by: 2025-03-01, from: 2025-01-01, to: 2025-02-01}\n"
            "  - {label: e, shock: escalation}\n"
            "  - {label: f, shock: escalation, topic: start, state: none, by: 2025-03-01}\n"
            "  - {label: g, topic: start, state: agreed, from: 2025-02-01, to: 2025-03-01}\n"
            "  - {label: h, shock: escalation, from: 2025-03-01, to: 2025-02-01}\n"
            "  - {label: a, summits: held, by: 2025-03-01, colour: red}\n"
            "  - {label: i, topic: start, state: agreed, by: 2025-03-01, reference_rate: 2}\n"
            "  - {label: j, shock: escalation, by: 20250301}\n")
    path, message = problems_of(tmp_path, text)
    for line, expected in (
            (2, "facts.0.observed: true is not a count (a whole number, 0 or more)"),
            (3, "facts.1.observed: 2 is not true or false"),
            (4, "facts.2.count: 'met' is not one of"),
            (5, "facts.3: by: and from:/to: exclude each other"),
            (6, "facts.4: give a date"),
            (7, "facts.5: give one quantity"),
            (8, "facts.6: a topic's state is read on one date"),
            (9, "facts.7: from: 2025-03-01 is after to: 2025-02-01"),
            (10, "facts.8.colour: unknown key"),
            (10, "facts.8.label: 'a' is the label of item 0 too"),
            (11, "facts.9: reference_rate is for counts"),
            (12, "facts.10.by: 20250301 is not a date")):
        assert f"{path}:{line}: {expected}" in message, (expected, message)


def test_the_old_undated_format_is_refused_with_what_to_write_instead(tmp_path):
    path, message = problems_of(
        tmp_path, "facts:\n  - {label: x, kind: count, column: calls.held, observed: 2}\n")
    assert f"{path}:2: facts.0.kind: 'count': the dated format has no kind" in message
    assert (f"{path}:2: facts.0.column: 'calls.held': removed: write track: calls, count: held, "
            "with a date") in message


@pytest.mark.parametrize("text,expected", [
    ("- {label: a}\n", ":1: a facts file is a mapping with the key 'facts'"),
    ("facts: []\n", "facts: List should have at least 1 item"),
    ("facts: [unclosed\n", "malformed YAML"),
    ("facts:\n  - label: a\n    label: b\n", ":3: facts.0.label: duplicate key"),
])
def test_a_malformed_facts_file_is_refused_with_its_line(tmp_path, text, expected):
    _, message = problems_of(tmp_path, text)
    assert expected in message


def test_a_facts_file_that_cannot_be_read_is_refused(tmp_path):
    with pytest.raises(InputError, match="cannot read facts file"):
        load_facts(tmp_path / "missing.yaml")


def test_items_the_scenario_lacks_are_refused_before_anything_runs(tmp_path):
    path = write(tmp_path, "facts:\n"
                 "  - {label: a, track: hotline, count: held, by: 2025-03-01}\n"
                 "  - {label: b, shock: meteor, by: 2025-03-01}\n"
                 "  - {label: c, topic: arctic, state: agreed, by: 2025-03-01}\n"
                 "  - {label: d, shock: escalation, by: 2025-01-20}\n"
                 "  - {label: e, shock: escalation, from: 2025-01-20, to: 2025-02-01}\n"
                 "  - {label: f, shock: escalation, by: 2200-01-01}\n")
    with pytest.raises(InputError) as exc:
        check_fits(load_facts(path), S)
    message = str(exc.value)
    for line, expected in ((2, "facts.0.track: 'hotline' is not a track of scenario 'hindcast_2025'"),
                           (3, "facts.1.shock: 'meteor' is not a shock"),
                           (4, "facts.2.topic: 'arctic' is not a topic"),
                           (5, "facts.3.by: 2025-01-20 is not after the scenario's start"),
                           (7, "facts.5.by: 2200-01-01 is more than 36500 days")):
        assert f"{path}:{line}: {expected}" in message, (expected, message)
    assert ":6:" not in message, "a window may start on the start date"


def test_sim_score_with_a_bad_facts_file_is_a_clean_error_and_writes_nothing(tmp_path):
    bad = write(tmp_path, "facts:\n  - {label: a, shock: escalation, by: 2025-03-01, observed: -1}\n")
    out = tmp_path / "sc"
    output = refused(cli("score", HINDCAST, "--facts", bad, "--runs", 10, "--out", out),
                     f"{bad}:2: facts.0.observed: -1 is not a count")
    assert output.startswith("error: ")
    assert not out.exists()
    lacking = write(tmp_path, "facts:\n  - {label: a, topic: arctic, state: agreed, by: 2025-03-01}\n",
                    "lacking.yaml")
    refused(cli("score", HINDCAST, "--facts", lacking, "--out", out), f"{lacking}:2: facts.0.topic")
    assert not out.exists(), "the facts are checked against the scenario before anything runs"


def test_sim_score_of_a_folder_refuses_runs_and_its_own_folder_as_out(tmp_path):
    folder = tmp_path / "job"
    run(S, runs=20, workers=1, out=folder)
    refused(cli("score", folder, "--facts", FACTS, "--runs", 10), "a results folder is scored")
    refused(cli("score", folder, "--facts", FACTS, "--out", folder), "being scored")


def test_sim_score_exits_2_through_the_real_command_line(tmp_path):
    bad = write(tmp_path, "facts:\n  - {label: a, shock: escalation}\n")
    proc = sim_cli("score", str(HINDCAST), "--facts", str(bad), "--out", str(tmp_path / "x"))
    assert_clean_error(proc)
    assert f"{bad}:2: facts.0: give a date" in proc.stderr
    assert not (tmp_path / "x").exists()


# --- questions: stored forecasts, scored later --------------------------------------------------


QUESTIONS = """facts:
  - {label: "Calls by June", track: calls, count: held, by: 2025-06-30, reference_rate: 0%s}
  - {label: "START agreed by October", topic: start, state: agreed, by: 2025-10-31%s}
"""


def test_a_questions_forecast_is_stored_then_scored_when_the_file_is_filled_in(tmp_path):
    out = tmp_path / "sc"
    asked = write(tmp_path, QUESTIONS % ("", ""))
    text = refusal_free(cli("score", HINDCAST, "--facts", asked, "--runs", 30, "-w", 1,
                            "--out", out))
    assert "Questions (no observed value yet)" in " ".join(text.split())
    stored = json.loads((out / "forecasts.json").read_text())["forecasts"]
    assert [f["label"] for f in stored] == ["Calls by June", "START agreed by October"]
    for f in stored:
        assert {"scenario_hash", "seed", "runs", "version", "made", "question"} <= set(f)
        assert f["runs"] == 30 and f["seed"] == S.seed
        assert f["made"] == dt.datetime.now(dt.UTC).date().isoformat()
    assert "counts" in stored[0] and "p_yes" in stored[1]
    # months later: the same file with what happened, scored with more runs, same folder
    answered = write(tmp_path, QUESTIONS % (", observed: 3", ", observed: false"))
    text = refusal_free(cli("score", HINDCAST, "--facts", answered, "--runs", 60, "-w", 1,
                            "--out", out, "--force"))
    report = json.loads((out / "score.json").read_text())
    assert [f["stored_forecast"] for f in report["facts"]] == [True, True]
    assert [f["forecast"]["runs"] for f in report["facts"]] == [30, 30], "the earlier forecast"
    assert "scored the forecast stored on" in " ".join(text.split())
    kept = json.loads((out / "forecasts.json").read_text())["forecasts"]
    assert [f["runs"] for f in kept] == [30, 30], "the stored forecasts stay on record"


def test_a_stored_forecast_of_another_scenario_is_not_scored_and_the_output_says_so(tmp_path):
    asked = write(tmp_path, QUESTIONS % ("", ""))
    refusal_free(cli("score", HINDCAST, "--facts", asked, "--runs", 20, "-w", 1,
                     "--out", tmp_path / "then"))
    other = write(tmp_path, f"extends: {HINDCAST}\nclimate:\n  initial_tension: 0.5\n",
                  "other.yaml")
    answered = write(tmp_path, QUESTIONS % (", observed: 3", ", observed: false"))
    text = refusal_free(cli("score", other, "--facts", answered, "--runs", 20, "-w", 1,
                            "--out", tmp_path / "now",
                            "--forecasts", tmp_path / "then" / "forecasts.json"))
    assert "was made with another scenario" in " ".join(text.split())
    report = json.loads((tmp_path / "now" / "score.json").read_text())
    assert [f["stored_forecast"] for f in report["facts"]] == [False, False]


def test_a_longer_horizon_keeps_the_stored_forecasts_valid(tmp_path):
    asked = write(tmp_path, QUESTIONS % ("", ""))
    refusal_free(cli("score", HINDCAST, "--facts", asked, "--runs", 20, "-w", 1,
                     "--out", tmp_path / "then"))
    longer = write(tmp_path, f"extends: {HINDCAST}\nhorizon_days: 700\n", "longer.yaml")
    answered = write(tmp_path, QUESTIONS % (", observed: 3", ", observed: false"))
    refusal_free(cli("score", longer, "--facts", answered, "--runs", 20, "-w", 1, "--out",
                     tmp_path / "now", "--forecasts", tmp_path / "then" / "forecasts.json"))
    report = json.loads((tmp_path / "now" / "score.json").read_text())
    assert [f["stored_forecast"] for f in report["facts"]] == [True, True]


def test_damaged_stored_forecasts_are_a_clean_error(tmp_path):
    bad = write(tmp_path, "{not json", "forecasts.json")
    asked = write(tmp_path, QUESTIONS % ("", ""))
    refused(cli("score", HINDCAST, "--facts", asked, "--runs", 10, "--out", tmp_path / "x",
                "--forecasts", bad), "cannot read stored forecasts")


# --- the score folder ---------------------------------------------------------------------------


def test_sim_score_writes_its_files_into_a_folder_sim_may_replace(tmp_path):
    out = tmp_path / "sc"
    text = refusal_free(cli("score", HINDCAST, "--facts", FACTS, "--runs", RUNS, "-w", 1,
                            "--out", out))
    assert "of 14 facts fall inside the central 90%" in text
    assert sorted(p.name for p in out.iterdir()) == [".sim-output", "pit.png", "reliability.png",
                                                    "score.json"]
    report = json.loads((out / "score.json").read_text())
    assert report["runs"] == RUNS and report["seed"] == S.seed and len(report["facts"]) == 14
    for f in report["facts"]:
        assert 0.0 <= f["p_observed"] <= 1.0
        assert all(math.isfinite(v) for v in f["scores"].values())
    refused(cli("score", HINDCAST, "--facts", FACTS, "--runs", RUNS, "--out", out), "--force")
    refusal_free(cli("score", HINDCAST, "--facts", FACTS, "--runs", RUNS, "-w", 1, "--out", out,
                     "--force"))
    (out / "notes.txt").write_text("mine")
    refused(cli("score", HINDCAST, "--facts", FACTS, "--runs", RUNS, "--out", out, "--force"),
            "notes.txt")
    assert (out / "notes.txt").read_text() == "mine"
