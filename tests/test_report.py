"""``sim.report`` and ``sim report``: one self-contained HTML page per set of jobs.

The page is parsed with the standard library's HTML parser: well nested, a title, every
image embedded as a PNG data URI, the summary tables, the differences and the scenario
differences.
"""

from __future__ import annotations

import base64
import copy
import io
import os
import stat
from html.parser import HTMLParser

import matplotlib

matplotlib.use("Agg")

import pytest
from helpers_results import (
    NO_SUMMITS,
    PNG_MAGIC,
    assert_clean_error,
    cached_run,
    fresh_run,
    sim_cli,
)

from sim.compare import compare, headline_rows
from sim.report import _comparison_html, render_report, write_report

RUNS = 400
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


class Page(HTMLParser):
    """What a report holds: structure errors, title, images, headings and tables."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.errors: list[str] = []
        self.stack: list[str] = []
        self.tags: list[str] = []
        self.title = ""
        self.images: list[dict[str, str | None]] = []
        self.headings: list[str] = []
        self.tables: list[list[list[str]]] = []
        self.row_classes: list[str | None] = []
        self._text: list[str] | None = None
        self._cell: list[str] | None = None
        self.doctype = ""
        self.rawtext = text
        self.feed(text)
        self.close()
        if self.stack:
            self.errors.append(f"unclosed: {self.stack}")

    def handle_decl(self, decl):
        self.doctype = decl

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs)
        if tag not in VOID:
            self.stack.append(tag)
        if tag in ("title", "h1", "h2", "h3"):
            self._text = []
        if tag == "table":
            self.tables.append([])
        if tag == "tr":
            self.tables[-1].append([])
            self.row_classes.append(attrs.get("class"))
        if tag in ("td", "th"):
            self._cell = []

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()
        if tag == "title":
            self.title = "".join(self._text)
        if tag in ("h1", "h2", "h3"):
            self.headings.append("".join(self._text))
        if tag in ("td", "th"):
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._text is not None:
            self._text.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def table_after(self, heading: str) -> list[list[str]]:
        """Return the rows of the first table whose header row starts with ``heading``."""
        for table in self.tables:
            if table and table[0] and table[0][0] == heading:
                return table
        raise AssertionError(f"no table headed {heading!r}")

    def text(self) -> str:
        return " ".join(" ".join(" ".join(row) for row in t) for t in self.tables)


def check_document(text: str) -> Page:
    assert text.startswith("<!DOCTYPE html>")
    page = Page(text)
    assert page.errors == []
    assert page.doctype.lower() == "doctype html"
    assert page.tags[0] == "html" and "head" in page.tags and "body" in page.tags
    return page


def check_images(page: Page, expected: int) -> None:
    from PIL import Image

    assert len(page.images) == expected
    for img in page.images:
        src = img["src"]
        assert src.startswith("data:image/png;base64,"), src[:40]
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert data[:8] == PNG_MAGIC
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
            assert im.size[0] > 200 and im.size[1] > 100
        assert img.get("alt")


@pytest.fixture(scope="module")
def jobs():
    base = cached_run("baseline", RUNS)
    other = copy.copy(cached_run("baseline", RUNS, overrides=NO_SUMMITS))
    other.name = "no_summits"
    return [base, other]


@pytest.fixture(scope="module")
def page(jobs):
    """The page of two jobs (rendering takes several seconds: done once)."""
    return check_document(render_report(jobs))


@pytest.fixture(scope="module")
def one_job_file(jobs, tmp_path_factory):
    """``write_report`` of the baseline alone, into a folder it has to make."""
    folder = tmp_path_factory.mktemp("one") / "sub"
    return folder, write_report(jobs[:1], folder / "report.html")


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# --- the page of two jobs -------------------------------------------------------------------------


@pytest.mark.slow
def test_report_is_a_well_formed_html_document_with_a_title(page):
    assert page.title == "Negotiation outcomes: baseline, no_summits"
    assert page.headings[0] == "Negotiation outcomes: baseline, no_summits"


@pytest.mark.slow
def test_report_embeds_every_image_as_a_png_data_uri(page):
    # four plots of the jobs and two forest plots of their differences
    check_images(page, 6)


@pytest.mark.slow
def test_report_has_a_summary_of_each_job(page, jobs):
    assert {"baseline", "no_summits", "Differences", "Scenario differences", "Plots"} <= set(
        page.headings)
    topic_tables = [t for t in page.tables if t[0][0] == "topic"]
    assert len(topic_tables) == 2
    for table, res in zip(topic_tables, jobs):
        summary = res.summary()
        assert table[0] == ["topic", "deadline", "P(agreement) before deadline",
                            "P(interim) at deadline", "P(deadline default)",
                            "P(agreement) by horizon (2027-11-01)", "median agreement date",
                            "mean agreed value", "reference forecast"]
        rows = {row[0]: row for row in table[1:]}
        assert list(rows) == [t.label for t in res.scenario.topics.values()]
        start = rows["New START / strategic stability"]
        assert start[1] == "2026-02-05"
        for k, metric in enumerate(("p_agreement_before_deadline", "p_interim_taken",
                                    "p_default", "p_agreement"), start=2):
            p = summary[f"start.{metric}"]
            assert start[k].startswith(f"{100 * p.estimate:.1f}%"), metric
            assert f"[{100 * p.low:.1f}, {100 * p.high:.1f}]" in start[k], metric
        assert start[8] == f"{summary.reference['start']:.2f}"
        flights = rows["Direct flights"]
        assert flights[1:5] == ["", "", "", ""]  # no deadline on flights: by the horizon only
        assert flights[5].startswith(f"{100 * summary['flights.p_agreement'].estimate:.1f}%")
    meeting_tables = [t for t in page.tables if t[0][0] == "meetings and climate"]
    assert len(meeting_tables) == 2
    no_summits = {row[0]: row for row in meeting_tables[1]}
    assert no_summits["P(at least one summit held)"][1].startswith("0.0%")
    assert no_summits["Leaders' summit: meetings held"][1] == "0.00"


@pytest.mark.slow
def test_report_has_the_differences_table(page, jobs):
    table = page.table_after("metric")
    assert table[0] == ["metric", "baseline", "no_summits", "difference", "95% interval", "p",
                        "test"]
    rows = {row[0]: row for row in table[1:]}
    summit = rows["P(at least one summit held)"]
    p_any = jobs[0].summary()["summits.p_any"].estimate
    assert summit[1] == f"{100 * p_any:.1f}%" and summit[2] == "0.0%"
    assert summit[3] == f"{-100 * p_any:+.1f} pp"
    assert summit[6] == "McNemar exact"
    assert "Summits held per run" in rows
    assert "New START / strategic stability: P(agreement before the deadline, 2026-02-05)" in rows
    assert not any("P(agreement by 20" in metric for metric in rows)  # dated rows left out
    assert "sig" in page.row_classes  # significant rows are highlighted
    assert "no_summits − baseline" in page.headings


@pytest.mark.slow
def test_report_opens_with_the_headline_differences(page, jobs):
    headings = page.headings
    assert headings.index("Headline differences") < headings.index("baseline")
    table = page.table_after("no_summits vs baseline")
    assert page.tables.index(table) == 0, "the first table of the page"
    assert table[0] == ["no_summits vs baseline", "baseline", "no_summits", "difference",
                        "95% interval", "p"]
    comparison = compare(*jobs)
    expected = [d.label for _, d in headline_rows(comparison)]
    assert [row[0] for row in table[1:]] == expected
    labels = set(expected)
    assert "P(at least one summit held)" in labels
    assert {f"New START / strategic stability: {what}" for what in (
        "P(agreement before the deadline, 2026-02-05)",
        "P(mutual one-year adherence to the central limits taken at the deadline)",
        "P(deadline default)", "P(agreement by the horizon, 2027-11-01)")} <= labels
    assert "Summits held per run" not in labels  # headline questions only
    significant = [comparison.get(_metric_of(comparison, row[0])).significant
                   for row in table[1:]]
    assert significant == sorted(significant, reverse=True), "significant ones first"
    assert significant[0]  # forbidding summits changes P(at least one summit held)


def _metric_of(comparison, label: str) -> str:
    return next(d.metric for _, d in comparison.rows if d.label == label)


@pytest.mark.slow
def test_report_says_how_the_jobs_are_paired(page, jobs):
    assert "common random numbers" in page.rawtext
    independent = copy.copy(cached_run("baseline", 200, seed=3))
    independent.name = "other_seed"
    assert "independent samples" in _comparison_html([jobs[0], independent])


@pytest.mark.slow
def test_report_lists_the_changed_scenario_key(page):
    assert "no_summits vs baseline: 1 keys differ" in page.headings
    table = page.table_after("key")
    assert table == [["key", "baseline", "no_summits"],
                     ["tracks.summit.max_meetings", "None", "0"]]


# --- one job ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_report_of_one_job_has_no_differences(one_job_file):
    folder, path = one_job_file
    assert path == folder / "report.html"
    assert [p.name for p in folder.iterdir()] == ["report.html"]  # no temporary files left
    page = check_document(path.read_text(encoding="utf-8"))
    assert page.title == "Negotiation outcomes: baseline"
    assert "Differences" not in page.headings and "Scenario differences" not in page.headings
    assert "Headline differences" not in page.headings
    check_images(page, 4)


@pytest.mark.slow
def test_report_file_has_the_usual_permissions(one_job_file):
    # like any file a program writes (0666 less the umask), not the 0600 of a temporary file:
    # a report is for sharing, e.g. from a web server running as another user
    _, path = one_job_file
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~current_umask()


# --- the command ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_sim_report_writes_a_self_contained_page_into_the_first_folder(tmp_path):
    fresh_run("baseline", 200, out=tmp_path / "base")
    fresh_run("baseline", 200, overrides=NO_SUMMITS, out=tmp_path / "no_summits")
    proc = sim_cli("report", str(tmp_path / "base"), str(tmp_path / "no_summits"))
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "base" / "report.html"  # the default place
    assert str(out) in proc.stdout
    page = check_document(out.read_text(encoding="utf-8"))
    # both folders hold the scenario "baseline": the jobs are told apart by folder name
    assert page.title == "Negotiation outcomes: base, no_summits"
    check_images(page, 6)
    assert page.table_after("key")[1] == ["tracks.summit.max_meetings", "None", "0"]
    assert "P(at least one summit held)" in page.text()


def test_sim_report_of_a_folder_without_results_is_a_clean_error(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = sim_cli("report", str(tmp_path / "empty"), "--out", str(tmp_path / "r.html"))
    assert_clean_error(proc)
    assert "not a finished results folder" in proc.stderr
    assert not (tmp_path / "r.html").exists()
