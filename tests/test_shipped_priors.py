"""The shipped scenarios carry their uncertainty: every [assumption] or [opinion] number is a
prior, every [fact] number a plain value, and the point values (the priors' medians) are the
numbers the scenarios had before they had priors.

(a) every shipped scenario loads and has priors;
(b) line by line, a number tagged [assumption] or [opinion] (or [prior], in the hindcast) is
    written as a prior, and a number tagged only [fact] is plain; the baseline's few exceptions
    are listed below with their reason, and each reason is checked;
(c) the baseline's point values equal its numbers of before: every prior is a symmetric
    triangular, whose median is its mode, so the point values are exact. Five keys are pinned
    by hand, and the whole point-valued scenario is compared with the copy of the baseline kept
    from before priors (tests/data/pinned/baseline.yaml). The comparison is exact (==): the
    shipped widths were chosen so that scipy's median is the mode to the last bit, so
    ``--inputs point`` reproduces the runs made before priors.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import yaml
from helpers_results import REPO, SCENARIOS

from sim.inputs import looks_like_prior
from sim.model import compile_scenario
from sim.montecarlo import simulate_chunk
from sim.scenario import ScenarioError, load_scenario

FILES = sorted(SCENARIOS.glob("*.yaml"))
BASELINE = SCENARIOS / "baseline.yaml"
PINNED = REPO / "tests" / "data" / "pinned" / "baseline.yaml"

#: [assumption] numbers of the baseline that stay plain, and why.
REFUSED = {
    "horizon_days": "the loader refuses a prior on a job's calendar",
}
NOT_READ = {
    "sides.russia.capability": "only the reference forecast reads a capability",
    "sides.united_states.capability": "only the reference forecast reads a capability",
    "sides.ukraine.capability": "only the reference forecast reads a capability",
    "sides.eu.capability": "only the reference forecast reads a capability",
    "sides.russia.discount": "no baseline track uses the Rubinstein protocol",
    "sides.united_states.discount": "no baseline track uses the Rubinstein protocol",
    "sides.russia.topics.start.ideal": "a signatory's ideal only says which side wants high values",
    "sides.united_states.topics.start.ideal": "as Russia's",
    "sides.united_states.topics.cooperation.ideal": "as Russia's",
}
#: Five numbers as documented in docs/scenarios.md before the baseline had priors.
DOCUMENTED = {
    "climate.concession_sensitivity": 0.4,
    "sides.united_states.topics.start.concession": 0.9,
    "tracks.summit.requires.convergence": 0.4,
    "sides.united_states.topics.flights.patience_days": 540,
    "bargaining.noise": 0.03,
}
UNCERTAIN_TAGS = ("[assumption]", "[opinion]", "[prior]")
LINE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][\w]*):(?P<value>[^#]*?)\s*(?:#(?P<comment>.*))?$")


@pytest.fixture(scope="module")
def loaded():
    return {f.stem: load_scenario(f) for f in FILES}


def numbered_lines(path):
    """Yield (line number, dotted key, value text, comment) of each ``key: value`` line.

    The shipped files write every number that carries a tag on a line of its own, in block
    style, so the dotted key follows from the indentation.
    """
    stack: list[tuple[int, str]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        m = LINE.match(line)
        if not m:
            continue
        indent = len(m["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, m["key"]))
        key = ".".join(k for _, k in stack)
        yield number, key, m["value"].strip(), m["comment"] or ""


def is_number(text: str) -> bool:
    value = yaml.safe_load(text) if text else None
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def tagged_lines(path):
    """Yield (line, key, value text, uncertain?) for each tagged line setting a number or a prior."""
    for number, key, value, comment in numbered_lines(path):
        uncertain = any(tag in comment for tag in UNCERTAIN_TAGS)
        fact = "[fact" in comment
        if not (uncertain or fact):
            continue
        if value.startswith("{") and looks_like_prior(yaml.safe_load(value)):
            yield number, key, value, uncertain, True
        elif is_number(value):
            yield number, key, value, uncertain, False


# --- (a) every shipped scenario loads and has priors -------------------------------------------


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_every_shipped_scenario_loads_and_has_priors(path, loaded):
    s = loaded[path.stem]
    assert s.priors, f"{path.name} has no prior"
    assert all(p.family == "triangular" for p in s.priors.values())


def test_the_variants_keep_the_baselines_priors_unless_they_restate_a_key(loaded):
    base = loaded["baseline"].priors
    for name in ("budapest_summit", "sanctions_escalation", "start_mutual_adherence",
                 "venue_security"):
        own = loaded[name].priors
        restated = [key for _, key, value, _ in numbered_lines(SCENARIOS / f"{name}.yaml") if value]
        for key, prior in base.items():
            if not any(key == k or key.startswith(k + ".") for k in restated):
                assert own.get(key) == prior, (name, key)


# --- (b) the tags and the priors agree, line by line ------------------------------------------


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_uncertain_numbers_are_priors_and_facts_are_plain(path):
    exceptions = {**REFUSED, **NOT_READ} if path == BASELINE else {}
    wrong = []
    for number, key, value, uncertain, prior in tagged_lines(path):
        if uncertain and not prior and key not in exceptions:
            wrong.append(f"{path.name}:{number} {key}: {value} is tagged uncertain but plain")
        if not uncertain and prior:
            wrong.append(f"{path.name}:{number} {key}: a prior tagged only [fact]")
        if prior and key in exceptions:
            wrong.append(f"{path.name}:{number} {key}: listed as fixed but holds a prior")
    assert not wrong, "\n".join(wrong)


def test_every_prior_the_loader_finds_is_on_a_tagged_line(loaded):
    lines = {key for _, key, _, uncertain, prior in tagged_lines(BASELINE) if prior and uncertain}
    assert set(loaded["baseline"].priors) == lines
    # and every exception names a tagged number of the baseline
    plain = {key for _, key, _, uncertain, prior in tagged_lines(BASELINE) if uncertain and not prior}
    assert plain == set(REFUSED) | set(NOT_READ)


def test_the_refused_keys_are_refused():
    for key in REFUSED:
        with pytest.raises(ScenarioError, match="a prior is not allowed here"):
            load_scenario(BASELINE, overrides=[f"{key}={{uniform: [700, 760]}}"])


def test_the_fixed_numbers_that_a_run_does_not_read_change_no_run(loaded):
    s = loaded["baseline"]
    changed = {"sides.russia.capability": 2.0, "sides.united_states.capability": 0.5,
               "sides.ukraine.capability": 3.0, "sides.eu.capability": 0.1,
               "sides.russia.discount": 0.5, "sides.united_states.discount": 0.6,
               "sides.russia.topics.start.ideal": 0.55, "sides.united_states.topics.start.ideal": 0.25,
               "sides.united_states.topics.cooperation.ideal": 0.4}
    assert set(changed) == set(NOT_READ)
    other = load_scenario(BASELINE, overrides=changed)
    a = simulate_chunk(compile_scenario(s), s.seed, 0, 40)
    b = simulate_chunk(compile_scenario(other), s.seed, 0, 40)
    assert a.keys() == b.keys()
    for column in a:
        assert np.array_equal(a[column], b[column], equal_nan=True), column


# --- (c) the point values are the numbers of before ------------------------------------------


def test_five_point_values_are_the_documented_numbers(loaded):
    s = loaded["baseline"]
    for key, documented in DOCUMENTED.items():
        assert key in s.priors, key
        assert s.priors[key].point() == documented, key


def test_every_baseline_prior_is_a_symmetric_triangular(loaded):
    for key, prior in loaded["baseline"].priors.items():
        low, mode, high = prior.params
        assert math.isclose(mode - low, high - mode, rel_tol=1e-9, abs_tol=1e-12), key


def test_the_point_valued_baseline_is_the_baseline_of_before_priors(loaded):
    before = load_scenario(PINNED)
    assert not before.priors
    now = loaded["baseline"]
    assert now.model_dump(exclude={"priors"}) == before.model_dump(exclude={"priors"})
