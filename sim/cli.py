"""The ``sim`` command line: a thin edge over the library.

Heavy modules (pydantic models, SimPy, pandas, scipy, matplotlib) are imported inside the
commands that use them, so ``sim --help`` stays instant.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

import click

from . import __version__

EXIT_BAD_INPUT = 2


class BadInput(click.ClickException):
    """Bad input from the user: printed without a traceback, exit code 2."""

    exit_code = EXIT_BAD_INPUT

    def show(self, file: Any = None) -> None:
        click.echo(self.format_message(), err=True)


def _reports_bad_input(command: Callable) -> Callable:
    """Turn the library's input errors into clean messages and exit code 2."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from .errors import InputError
        from .scenario import ScenarioError

        try:
            return command(*args, **kwargs)
        except ScenarioError as exc:
            lines = [f"error: {p}" for p in exc.problems]
            noun = "problem" if len(exc.problems) == 1 else "problems"
            lines.append(f"{len(exc.problems)} {noun} found; nothing was run.")
            raise BadInput("\n".join(lines)) from None
        except InputError as exc:
            raise BadInput("\n".join(f"error: {line}" for line in str(exc).splitlines())) from None
        except OSError as exc:  # a folder or file the system refused: say which, no traceback
            where = f"{exc.filename}: " if exc.filename else ""
            raise BadInput(f"error: {where}{exc.strerror or exc}") from None
        except KeyboardInterrupt:  # Ctrl-C: a plain line and the shell's code, not "Aborted!"
            click.echo("\ninterrupted", err=True)
            raise SystemExit(130) from None

    return wrapper


_set_option = click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE",
    help="Override a scenario key, e.g. --set tracks.summit.cancel_prob=0.4 (repeatable).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sim")
def main() -> None:
    """Monte Carlo scenario simulator for negotiation outcomes."""


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@_set_option
@click.option("--quiet", "-q", is_flag=True, help="Print nothing on success.")
@_reports_bad_input
def validate(scenario: str, overrides: tuple[str, ...], quiet: bool) -> None:
    """Check a scenario file without running it."""
    from .scenario import load_scenario

    s = load_scenario(scenario, overrides=overrides)
    if not quiet:
        click.echo(
            f"{scenario}: valid scenario '{s.name}': {len(s.topics)} topics, {len(s.sides)} sides, "
            f"{len(s.tracks)} tracks, {len(s.venues)} venues, {len(s.shocks)} shocks; "
            f"{s.start} + {s.horizon_days} days"
        )


@main.command()
def schema() -> None:
    """Print the JSON Schema of scenario files (for editors)."""
    import json

    from .inputs import schema_with_priors
    from .scenario import Scenario

    click.echo(json.dumps(schema_with_priors(Scenario.model_json_schema()), indent=2))


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--run", "run_index", type=click.IntRange(min=0), default=0, show_default=True,
              help="Run index within the job.")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Seed (default: the scenario's).")
@_set_option
@click.option("--kind", "kinds", multiple=True, help="Show only these event kinds (repeatable).")
@_reports_bad_input
def trace(scenario: str, run_index: int, seed: int | None, overrides: tuple[str, ...],
          kinds: tuple[str, ...]) -> None:
    """Print the dated timeline of one run and its outcome.

    Event kinds for --kind: not ready, planned, veto, postponed, held, cancelled, derailed,
    leak, stall, talks, agreement, shock, interim, default.
    """
    from .model import simulate
    from .scenario import load_scenario
    from .tracing import check_kinds, render_trace

    shown = check_kinds(kinds)  # an unknown kind is an error (exit 2), not an empty timeline
    s = load_scenario(scenario, overrides=overrides)
    outcome = simulate(s, seed=seed, run=run_index, trace=True)
    click.echo(render_trace(s, outcome, seed=s.seed if seed is None else seed, run=run_index,
                            kinds=shown))


@main.command("run")
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--runs", "-n", type=int, default=None, help="Number of runs (default: the scenario's).")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Seed (default: the scenario's).")
@click.option("--workers", "-w", type=int, default=None, help="Worker processes (default: all cores).")
@click.option("--executor", type=click.Choice(["auto", "local", "process", "dask"]), default="auto",
              show_default=True, help="Where runs go: this process, a process pool, or Dask.")
@click.option("--scheduler", default=None, metavar="ADDRESS", help="Address of a running Dask scheduler.")
@click.option("--chunk-size", type=int, default=None, help="Runs per chunk (default: automatic).")
@_set_option
@click.option("--out", "-o", type=click.Path(file_okay=False), default=None,
              help="Results folder (default: results/<scenario name>).")
@click.option("--force", is_flag=True, help="Replace an existing results folder.")
@click.option("--resume", is_flag=True, help="Finish an interrupted job in the results folder.")
@click.option("--target-se", type=float, default=None,
              help="Stop once every headline probability's standard error is below this.")
@click.option("--inputs", "input_mode", type=click.Choice(["sample", "point"]), default="sample",
              show_default=True,
              help="Draw each run's uncertain inputs from their priors, or run them all at "
                   "their point values (medians; a choice's mode).")
@click.option("--replications", "-R", type=click.IntRange(min=1), default=1, show_default=True,
              help="Runs per input draw: with R > 1 the summary splits the spread into "
                   "what the unknowns and what the events contribute.")
@click.option("--inputs-from", "inputs_from", type=click.Path(file_okay=False), default=None,
              metavar="CALIBRATION",
              help="Draw the calibrated inputs from this calibration's posterior (sim "
                   "calibrate); the other priors stay.")
@click.option("--csv", "write_csv", is_flag=True, help="Also write the outcomes as CSV.")
@click.option("--svg", is_flag=True, help="Also write the plots as SVG.")
@click.option("--no-plots", is_flag=True, help="Skip the plots.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary table.")
@_reports_bad_input
def run_command(scenario: str, runs: int | None, seed: int | None, workers: int | None,
                executor: str, scheduler: str | None, chunk_size: int | None,
                overrides: tuple[str, ...], out: str | None, force: bool, resume: bool,
                target_se: float | None, input_mode: str, replications: int,
                inputs_from: str | None, write_csv: bool, svg: bool, no_plots: bool,
                quiet: bool) -> None:
    """Run a scenario many times and write its results folder."""
    import sys
    from pathlib import Path

    from .montecarlo import run
    from .scenario import load_scenario

    if force and resume:
        raise BadInput("error: --force and --resume exclude each other")
    s = load_scenario(scenario, overrides=overrides)
    folder = Path(out) if out else Path("results") / s.name
    try:
        results = run(s, runs=runs, seed=seed, workers=workers, executor=executor,
                      scheduler=scheduler, chunk_size=chunk_size, out=folder, resume=resume,
                      force=force, target_se=target_se, overrides=overrides,
                      inputs=input_mode, replications=replications, keep_lock=True,
                      inputs_from=inputs_from, progress=not quiet and sys.stderr.isatty())
    except KeyboardInterrupt:
        _interrupted(folder)
    unknown = results.metadata.get("calibration", {}).get("not_in_scenario")
    if unknown:  # said even with --quiet: these inputs of the posterior were not used
        click.echo(f"note: the posterior in {inputs_from} has inputs {s.name} has no prior on, "
                   f"not used: {', '.join(unknown)}", err=True)
    try:  # the folder stays locked until its plots and CSV are written too
        _finish_outputs(results, folder, write_csv=write_csv, svg=svg, no_plots=no_plots,
                        quiet=quiet, overrides=overrides)
    finally:
        results.release()


def _title(name: str, overrides: tuple[str, ...]) -> str:
    """Return what a job is: its scenario and every --set it was run with."""
    if not overrides:
        return f"Scenario {name}"
    return f"Scenario {name} with " + " ".join(f"--set {o}" for o in overrides)


def _interrupted(folder) -> None:
    """Say how to finish an interrupted job, and exit 130 as a shell expects after Ctrl-C."""
    parts = folder / "outcomes"
    saved = len(list(parts.glob("part-*.parquet"))) if parts.is_dir() else 0
    click.echo(f"\ninterrupted: {saved} finished chunk(s) are kept in {folder}/; run the same "
               "command with --resume to finish the job without redoing them", err=True)
    raise SystemExit(130)


def _finish_outputs(results, folder, *, write_csv: bool, svg: bool, no_plots: bool,
                    quiet: bool, overrides: tuple[str, ...] = ()) -> None:
    from .outputs import record
    from .summary import render_summary

    written = [folder / "outcomes", folder / "summary.json", folder / "metadata.json",
               folder / "scenario.yaml"]
    if write_csv:
        written.append(results.to_csv(folder / "outcomes.csv"))
    if not no_plots:
        import matplotlib

        matplotlib.use("Agg")
        from .plots import save_default_plots

        record(folder, [folder / "plots" / "*"])  # first: a killed job's plots are ours too
        plots = save_default_plots(results, folder / "plots", ("png", "svg") if svg else ("png",))
        record(folder, plots, done=[folder / "plots" / "*"])  # so that --force replaces them
        written += plots
    if quiet:
        return
    meta = results.metadata
    if overrides:
        click.echo(_title(results.name, overrides))
    click.echo(render_summary(results.summary()))
    rate = meta.get("runs_per_second")
    speed = f", {rate:,.0f} runs/s" if rate else ""
    if meta.get("model_build", "").startswith("pure"):
        speed += " (pure-Python model: see README, 'The compiled model')"
    stop = ""
    if meta.get("target_se") is not None:
        stop = (f"; target SE {meta['target_se']} reached after {results.runs:,} runs"
                if meta.get("stopped_at_target") else
                f"; target SE {meta['target_se']} not reached within {results.runs:,} runs")
    workers = f"{meta['workers']} worker" + ("" if meta["workers"] == 1 else "s")
    click.echo(f"{results.runs:,} runs with seed {meta['seed']} on {meta['executor']} "
               f"({workers}) in {meta['wall_seconds']:.1f} s{speed}{stop}")
    calibration = meta.get("calibration")
    if calibration:
        click.echo(f"Inputs {', '.join(calibration['inputs'])} drawn from the posterior in "
                   f"{calibration['source']} ({calibration['particles']:,} particles); "
                   f"{calibration['kept_priors']} other inputs from their priors")
    click.echo(f"Results in {folder}/:")
    for path in written:
        click.echo(f"  {path}")


def _load_results(folders: tuple[str, ...]):
    from pathlib import Path

    from .results import Results

    results = [Results.load(f) for f in folders]
    names = [r.name for r in results]
    if len(set(names)) < len(names):  # the same scenario run twice: tell them apart by folder
        for res, folder in zip(results, folders):
            res.name = Path(folder).resolve().name
    return results


@main.command("compare")
@click.argument("folders", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--out", "-o", type=click.Path(file_okay=False), default=None,
              help="Folder for the comparison table and plots (default: results/compare-A-vs-B).")
@click.option("--metric", "metrics", multiple=True,
              help="Keep metrics whose name contains this, e.g. start. or summits (repeatable).")
@click.option("--all", "all_metrics", is_flag=True, help="Print every metric, dated ones too.")
@click.option("--force", is_flag=True, help="Replace an existing comparison folder.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the paths written.")
@_reports_bad_input
def compare_command(folders: tuple[str, ...], out: str | None, metrics: tuple[str, ...],
                    all_metrics: bool, force: bool, quiet: bool) -> None:
    """Compare results folders: differences from the first, with intervals and tests."""
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")

    from .compare import compare, render_comparison
    from .errors import InputError
    from .outputs import claim

    if len(folders) < 2:
        raise InputError("compare needs at least two results folders")
    results = _load_results(folders)
    comparison = compare(*results, metrics=list(metrics) or None)
    folder = Path(out) if out else Path("results") / _comparison_name([r.name for r in results])
    lock, _ = claim(folder, "comparison", force=force)  # --force clears the whole folder
    try:
        written = _write_comparison(folder, comparison, results)
    finally:
        if lock is not None:
            lock.release()
    if not quiet:
        click.echo(render_comparison(comparison, all_metrics=all_metrics))
        click.echo(f"Comparison in {folder}/:")
    for path in written:
        click.echo(f"  {path}")


def _comparison_name(names: list[str]) -> str:
    """Return the default comparison folder's name, short enough for any file system."""
    import hashlib

    name = "compare-" + "-vs-".join(names)
    if len(name) <= 120:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"{name[:100]}-{digest}"


def _write_comparison(folder, comparison, results) -> list:
    import json

    import matplotlib.pyplot as plt

    from .plots import (
        plot_agreed_values_grid,
        plot_agreement_curves,
        plot_forest,
        plot_meetings,
        plot_outcome_categories,
    )
    from .results import write_atomic, write_text_atomic

    write_text_atomic(folder / "comparison.json", json.dumps(comparison.to_dict(), indent=2) + "\n")
    table = comparison.table()
    write_atomic(folder / "comparison.csv", lambda tmp: table.to_csv(tmp, index=False))
    figures = {
        "agreement_curves": plot_agreement_curves(results),
        "outcome_categories": plot_outcome_categories(results),
        "agreed_values": plot_agreed_values_grid(results),
        "meetings": plot_meetings(results),
    }
    kinds = {d.kind for _, d in comparison.rows}
    if "probability" in kinds:
        figures["forest_probabilities"] = plot_forest(comparison, kind="probability")
    if "mean" in kinds:
        figures["forest_means"] = plot_forest(comparison, kind="mean")
    written = [folder / "comparison.json", folder / "comparison.csv"]
    for name, fig in figures.items():
        path = folder / f"{name}.png"
        write_atomic(path, lambda tmp, fig=fig: fig.savefig(tmp, format="png"))
        plt.close(fig)
        written.append(path)
    return written


@main.command("report")
@click.argument("folders", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--out", "-o", type=click.Path(dir_okay=False), default=None,
              help="HTML file to write (default: report.html in the first folder).")
@_reports_bad_input
def report_command(folders: tuple[str, ...], out: str | None) -> None:
    """Write one self-contained HTML report of one or more results folders.

    An existing report written by sim is replaced; any other existing file is kept.
    """
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    from .outputs import check_report_target
    from .report import write_report

    results = _load_results(folders)
    path = Path(out) if out else Path(folders[0]) / "report.html"
    check_report_target(path)
    write_report(results, path)
    click.echo(f"Report written to {path}")


@main.command("sweep")
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--param", "-p", "param_specs", multiple=True, required=True, metavar="KEY=SPEC",
              help="A swept key: key=lo:hi:n or key=a,b,c (grid), key=lo:hi (lhs, sobol).")
@click.option("--design", type=click.Choice(["grid", "lhs", "sobol"]), default="grid", show_default=True)
@click.option("--points", type=int, default=None, help="Design points for lhs and sobol.")
@click.option("--runs", "-n", type=int, default=200, show_default=True, help="Runs per point.")
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="Seed shared by all points (default: the scenario's).")
@click.option("--workers", "-w", type=int, default=None, help="Worker processes (default: all cores).")
@click.option("--executor", type=click.Choice(["auto", "local", "process", "dask"]), default="auto",
              show_default=True)
@click.option("--scheduler", default=None, metavar="ADDRESS", help="Address of a running Dask scheduler.")
@_set_option
@click.option("--metric", "-m", "metrics", multiple=True,
              help="Metric to plot, e.g. start.p_agreement (repeatable; default: every P(agreement)).")
@click.option("--sensitivity", "sensitivity_metric", default=None, metavar="METRIC",
              help="Also estimate Sobol' indices of METRIC to the swept ranges.")
@click.option("--sensitivity-n", type=int, default=32, show_default=True,
              help="Sobol' base sample size (a power of 2); n (d + 2) jobs are run.")
@click.option("--out", "-o", type=click.Path(file_okay=False), default=None,
              help="Folder for the table and plots (default: results/<scenario>-sweep).")
@click.option("--force", is_flag=True, help="Replace an existing sweep folder.")
@click.option("--resume", is_flag=True, help="Finish an interrupted sweep in the folder.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no table.")
@_reports_bad_input
def sweep_command(scenario: str, param_specs: tuple[str, ...], design: str, points: int | None,
                  runs: int, seed: int | None, workers: int | None, executor: str,
                  scheduler: str | None, overrides: tuple[str, ...], metrics: tuple[str, ...],
                  sensitivity_metric: str | None, sensitivity_n: int, out: str | None,
                  force: bool, resume: bool, quiet: bool) -> None:
    """Sweep scenario keys over a design; write the table (Parquet, CSV) and plots."""
    import sys
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .errors import InputError
    from .plots import plot_sensitivity, plot_sweep_heatmap, plot_sweep_line
    from .results import write_atomic
    from .scenario import load_scenario
    from .sweep import check_sensitivity, headline_metrics, model_sensitivity, parse_param, sweep

    if force and resume:
        raise InputError("--force and --resume exclude each other")
    if points is not None and design == "grid":
        raise InputError("--points is for lhs and sobol designs; a grid's points are its values")
    parsed = [parse_param(spec, design) for spec in param_specs]
    repeated = sorted({k for k, _ in parsed if [p for p, _ in parsed].count(k) > 1})
    if repeated:
        raise InputError(f"--param {repeated[0]} is given more than once; give each key once")
    params = dict(parsed)
    s = load_scenario(scenario, overrides=overrides)
    known = headline_metrics(s)
    for m in metrics:
        if m not in known:
            raise InputError(f"--metric {m}: not a sweep metric; choose from {', '.join(known)}")
    chosen = list(metrics) or [m for m in known if m.endswith(".p_agreement")]
    if sensitivity_metric is not None:
        check_sensitivity(s, sensitivity_metric, sensitivity_n, len(params))
    folder = Path(out) if out else Path("results") / f"{s.name}-sweep"
    progress = not quiet and sys.stderr.isatty()
    table = sweep(s, params, design=design, points=points, runs=runs, seed=seed, workers=workers,
                  executor=executor, scheduler=scheduler, out=folder, resume=resume, force=force,
                  progress=progress)
    written = [folder / "sweep.parquet", folder / "sweep.csv"]
    keys = list(params)

    def save(fig, name: str) -> None:
        path = folder / f"{name}.png"
        write_atomic(path, lambda tmp: fig.savefig(tmp, format="png"))
        plt.close(fig)
        written.append(path)

    import pandas as pd

    numeric = all(pd.api.types.is_numeric_dtype(table[k]) and not pd.api.types.is_bool_dtype(table[k])
                  for k in keys)
    if not numeric:  # categories (a tactic, a protocol) have no axis to plot a line along
        pass
    elif design == "grid" and len(keys) == 1:
        save(plot_sweep_line(table, keys[0], chosen), "sweep")
    elif design == "grid" and len(keys) == 2:
        for m in chosen:
            save(plot_sweep_heatmap(table, keys[0], keys[1], m), f"heatmap_{m}")
    else:
        for key in keys:
            save(plot_sweep_line(table, key, chosen), f"sweep_{key}")
    if sensitivity_metric is not None:
        ranges = {k: (min(v), max(v)) for k, v in params.items()}  # a grid's span, or the range
        sens = model_sensitivity(s, ranges, sensitivity_metric, n=sensitivity_n, runs=runs,
                                 seed=seed, workers=workers, executor=executor, progress=progress)
        path = folder / "sensitivity.csv"
        write_atomic(path, lambda tmp: sens.table().to_csv(tmp, index=False))
        written.append(path)
        save(plot_sensitivity(sens), "sensitivity")
        if not quiet:
            click.echo(sens.table().to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if not quiet:
        shown = keys + [c for m in chosen for c in (m, f"{m}_se")]
        click.echo(table[shown].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        click.echo(f"{len(table)} points x {runs} runs; results in {folder}/:")
    for path in written:
        click.echo(f"  {path}")


@main.command("calibrate")
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--facts", type=click.Path(dir_okay=False), required=True,
              help="Dated facts file: what happened, each with its date.")
@click.option("--input", "inputs", multiple=True, metavar="KEY",
              help="An uncertain input to calibrate: a dotted key or a pattern such as "
                   "'tracks.*.cancel_prob' (repeatable; default: every prior, at most 20).")
@click.option("--population", type=int, default=400, show_default=True,
              help="Particles per generation.")
@click.option("--generations", type=int, default=8, show_default=True,
              help="The most generations to run.")
@click.option("--min-acceptance", type=float, default=0.02, show_default=True,
              help="Stop once a generation accepts fewer proposals than this share.")
@click.option("--max-simulations", type=int, default=200_000, show_default=True,
              help="Stop once this many simulations are spent.")
@click.option("--check-runs", type=int, default=2000, show_default=True,
              help="Runs of the posterior predictive check.")
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="Seed (default: the scenario's).")
@click.option("--workers", "-w", type=int, default=None, help="Worker processes (default: all cores).")
@click.option("--executor", type=click.Choice(["auto", "local", "process", "dask"]), default="auto",
              show_default=True, help="Where simulations go: this process, a process pool, or Dask.")
@click.option("--scheduler", default=None, metavar="ADDRESS", help="Address of a running Dask scheduler.")
@click.option("--out", "-o", type=click.Path(file_okay=False), default=None,
              help="Calibration folder (default: results/<scenario name>-calibration).")
@click.option("--force", is_flag=True, help="Replace an existing calibration folder.")
@click.option("--resume", is_flag=True,
              help="Continue an interrupted calibration from its last complete generation.")
@click.option("--no-plots", is_flag=True, help="Skip the prior-against-posterior plots.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
@_reports_bad_input
def calibrate_command(scenario: str, facts: str, inputs: tuple[str, ...], population: int,
                      generations: int, min_acceptance: float, max_simulations: int,
                      check_runs: int, seed: int | None, workers: int | None, executor: str,
                      scheduler: str | None, out: str | None, force: bool, resume: bool,
                      no_plots: bool, quiet: bool) -> None:
    """Fit a scenario's uncertain inputs to dated facts (ABC-SMC); write the posterior.

    Each simulation is one run read at every fact's date; the distance is the L1 distance of
    the facts' quantities, each scaled by its spread (docs/model.md, 'Calibration'). The
    folder holds posterior.parquet (a weight column and one per input), generations.csv,
    a prior-against-posterior plot per input and the posterior predictive check
    (check.txt). Use it with sim run --inputs-from FOLDER.
    """
    import sys

    from .calibration import Settings, calibrate, summary_text
    from .scenario import load_scenario

    if force and resume:
        raise BadInput("error: --force and --resume exclude each other")
    s = load_scenario(scenario)
    settings = Settings(population=population, generations=generations,
                        min_acceptance=min_acceptance, max_simulations=max_simulations,
                        seed=s.seed if seed is None else seed, check_runs=check_runs)
    cal = calibrate(s, facts, inputs=inputs, settings=settings, out=out, force=force,
                    resume=resume, workers=workers, executor=executor, scheduler=scheduler,
                    progress=not quiet and sys.stderr.isatty(), plots=not no_plots)
    click.echo(summary_text(cal))
    if not cal.complete:  # interrupted: what was done is written, and the shell hears of it
        raise SystemExit(130)


@main.command("hindcast")
@click.argument("scenario", type=click.Path(dir_okay=False), default="scenarios/hindcast_2025.yaml")
@click.option("--facts", type=click.Path(dir_okay=False), default="scenarios/facts/hindcast_2025.yaml",
              show_default=True, help="Dated facts file: what happened, each with its date.")
@click.option("--runs", "-n", type=int, default=None, help="Number of runs (default: the scenario's).")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Seed (default: the scenario's).")
@click.option("--workers", "-w", type=int, default=None)
@click.option("--out", "-o", type=click.Path(file_okay=False), default=None,
              help="Results folder (default: results/<scenario name>).")
@click.option("--force", is_flag=True, help="Replace an existing results folder.")
@_reports_bad_input
def hindcast_command(scenario: str, facts: str, runs: int | None, seed: int | None,
                     workers: int | None, out: str | None, force: bool) -> None:
    """Run a hindcast scenario and score its forecasts against the dated record.

    Writes the runs (an ordinary results folder) and score.json, reliability.png and
    pit.png into it; prints each fact's probability and scores, the totals with the skill
    over the reference forecaster, and how many facts fall inside the central 90%.
    """
    import sys

    from .hindcast import hindcast
    from .scoring import render

    card, folder, written = hindcast(scenario, facts, runs=runs, seed=seed, workers=workers,
                                     out=out, force=force, progress=sys.stderr.isatty())
    click.echo(render(card))
    click.echo(f"Results in {folder}/: " + ", ".join(p.name for p in written))


@main.command("score")
@click.argument("source", metavar="SCENARIO|RESULTS", type=click.Path())
@click.option("--facts", required=True, type=click.Path(dir_okay=False),
              help="YAML list of dated facts (observed) and questions (not yet observed).")
@click.option("--runs", "-n", type=int, default=None, help="Number of runs (default: the scenario's).")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Seed (default: the scenario's).")
@click.option("--workers", "-w", type=int, default=None, help="Worker processes (default: all cores).")
@click.option("--out", "-o", type=click.Path(file_okay=False), default=None,
              help="Folder for the scores (default: results/<scenario name>-score).")
@click.option("--force", is_flag=True, help="Replace an existing score folder.")
@click.option("--forecasts", "forecasts", type=click.Path(dir_okay=False), default=None,
              help="forecasts.json of an earlier sim score (default: the one in --out, if any).")
@_reports_bad_input
def score_command(source: str, facts: str, runs: int | None, seed: int | None,
                  workers: int | None, out: str | None, force: bool,
                  forecasts: str | None) -> None:
    """Score a scenario's forecasts (or a results folder's) against dated facts.

    Each item is evaluated exactly at its date (the scenario is run to every date the facts
    need, with the same seed and runs); questions' forecasts are stored in forecasts.json.
    """
    import sys
    from pathlib import Path

    from .errors import InputError
    from .facts import check_fits, load_facts
    from .hindcast import folder_job, folder_scenario, score_into
    from .results import Results
    from .scenario import load_scenario
    from .scoring import render

    items = load_facts(facts)
    job: dict = {"workers": workers, "progress": sys.stderr.isatty()}
    if Path(source).is_dir():
        if runs is not None or seed is not None:
            raise InputError("--runs and --seed: a results folder is scored with its own runs "
                             "and seed; give the scenario file to run others")
        results = Results.load(source)
        s, job = folder_scenario(results), {**job, **folder_job(results)}
    else:
        s = load_scenario(source)
        job.update(runs=s.runs if runs is None else runs, seed=s.seed if seed is None else seed)
    check_fits(items, s)
    folder = Path(out) if out else Path("results") / f"{s.name}-score"
    if Path(source).is_dir() and folder.resolve() == Path(source).resolve():
        raise InputError(f"--out {folder}: that is the results folder being scored; choose "
                         "another --out")
    card, written = score_into(folder, s, items, force=force, forecasts=forecasts, **job)
    click.echo(render(card))
    click.echo(f"Scores in {folder}/: " + ", ".join(p.name for p in written))


@main.command("discover")
@click.argument("results_folder", metavar="RESULTS", type=click.Path(file_okay=False))
@click.option("--outcome", "-y", "outcome", required=True, metavar="EXPR",
              help="The outcome of interest, e.g. \"start.outcome == 'agreement'\", "
                   "\"flights.day < 365\", \"summits_held >= 1\".")
@click.option("--threshold", type=float, default=None,
              help="Least density of each box's chosen peeling point (default 0.8).")
@click.option("--out", "-o", type=click.Path(file_okay=False), default=None,
              help="Folder for discovery.json and its plots (default: RESULTS).")
@click.option("--quiet", "-q", is_flag=True, help="Print only the paths written.")
@_reports_bad_input
def discover(results_folder: str, outcome: str, threshold: float | None, out: str | None,
             quiet: bool) -> None:
    """Find where in the uncertain inputs an outcome concentrates (PRIM), and what matters.

    Prints PRIM's boxes with coverage, density and mass, a classification tree's rules as a
    second opinion, and the inputs ranked by extra-trees feature scores; writes
    discovery.json, discovery_trajectory.png and discovery_limits.png.
    """
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    from . import discovery
    from .results import Results

    results = Results.load(results_folder)
    found = discovery.discover(results, outcome, threshold=threshold)
    folder = Path(out) if out else Path(results_folder)
    written = discovery.save_discovery(found, folder)
    if not quiet:
        click.echo(discovery.render_discovery(found))
        click.echo(discovery.render_importance(discovery.importance(results, [found.outcome])))
        click.echo(f"Discovery in {folder}/:")
    for path in written:
        click.echo(f"  {path}")


if __name__ == "__main__":  # pragma: no cover
    main()
