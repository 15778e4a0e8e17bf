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
            raise BadInput(f"error: {exc}") from None

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

    from .scenario import Scenario

    click.echo(json.dumps(Scenario.model_json_schema(), indent=2))


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
    """Print the dated timeline of one run and its outcome."""
    from .model import simulate
    from .scenario import load_scenario
    from .tracing import render_trace

    s = load_scenario(scenario, overrides=overrides)
    outcome = simulate(s, seed=seed, run=run_index, trace=True)
    click.echo(render_trace(s, outcome, seed=s.seed if seed is None else seed, run=run_index,
                            kinds=set(kinds) or None))


if __name__ == "__main__":  # pragma: no cover
    main()
