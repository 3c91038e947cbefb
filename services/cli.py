"""The `crisismon` command: one place for every subcommand.

Bad usage or an unreadable input prints one line on stderr and exits 2, never a traceback.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import click
from pydantic import ValidationError

from replay.readers import FORMATS, InputError
from replay.readers.base import describe
from services.settings import Settings, load_settings

USAGE_EXIT = 2


def fail(message: str) -> NoReturn:
    click.echo(f"crisismon: error: {message}", err=True)
    sys.exit(USAGE_EXIT)


def settings_from(config_file: Path | None, **flags: Any) -> Settings:
    try:
        return load_settings(config_file, **flags)
    except ValidationError as error:
        fail(f"invalid settings: {describe(error)}")
    except (OSError, ValueError) as error:
        fail(f"cannot read the configuration: {error}")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """CrisisMon: escalation and de-escalation indices per country dyad, and alerts."""


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--format", "file_format", type=click.Choice(FORMATS), default="auto", show_default=True)
@click.option("--config", "config_file", type=click.Path(path_type=Path), help="YAML, TOML or JSON settings.")
@click.option("--json", "as_json", is_flag=True, help="Only alerts on stdout, one JSON object per line.")
@click.option(
    "--report", "report_dir", type=click.Path(path_type=Path), help="Write charts and an HTML page here."
)
def backtest(
    paths: tuple[Path, ...],
    file_format: str,
    config_file: Path | None,
    as_json: bool,
    report_dir: Path | None,
) -> None:
    """Run event files through the engine offline (no Kafka) and show the alerts."""
    from services.backtest.run import run_backtest
    from services.backtest.timeline import render_bad_rows, render_timeline

    config = settings_from(config_file).engine_config()
    try:
        result = run_backtest(paths, config, file_format)
    except InputError as error:
        fail(str(error))
    for line in render_bad_rows(result):
        click.echo(line, err=True)
    if as_json:
        emitted_at = datetime.now(UTC)
        for alert in result.alerts:
            click.echo(alert.model_copy(update={"emitted_at": emitted_at}).model_dump_json())
    else:
        for line in render_timeline(result):
            click.echo(line)
    if report_dir is not None:
        from services.backtest.report import write_report

        page = write_report(result, report_dir)
        click.echo(f"report: {page}", err=True)


@cli.group()
def schemas() -> None:
    """The JSON Schemas of every record (schemas/json) and their examples."""


@schemas.command("export")
@click.option("--check", is_flag=True, help="Fail (exit 1) when the committed files are stale.")
def schemas_export(check: bool) -> None:
    """Write the JSON Schemas and examples generated from the pydantic models."""
    from schemas.export import export, stale_files

    if check:
        stale = stale_files()
        for path in stale:
            click.echo(f"stale: {path} (run `crisismon schemas export`)", err=True)
        if stale:
            sys.exit(1)
        click.echo("schemas are up to date")
        return
    for path in export():
        click.echo(f"wrote {path}")


def main() -> None:
    """Entry point: click's usage errors become one line and exit 2."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        fail("aborted")
    except click.UsageError as error:
        command = error.ctx.command_path if error.ctx else "crisismon"
        fail(f"{command}: {error.format_message()} (see --help)")
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.ClickException as error:
        fail(error.format_message())
