"""The `crisismon` command: one place for every subcommand.

Bad usage or an unreadable input prints one line on stderr and exits 2, never a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

import click
from pydantic import ValidationError

from replay.readers import FORMATS, InputError
from replay.readers.base import PLAY_ORDERS, PlayOrder
from schemas.outputs import Alert, Level
from schemas.validation import describe
from services.settings import Settings, load_settings

USAGE_EXIT = 2
DEMO_SPEED_DEFAULT = 43200
"""Twelve hours of event time per second: the article's two weeks play in about half a minute."""


ORDER_HELP = (
    "event-time: every record in event-time order; published: file by file in name order, as"
    " `crisismon follow` plays files as they are published (its alerts, id for id)."
)


def fail(message: str) -> NoReturn:
    click.echo(f"crisismon: error: {message}", err=True)
    sys.exit(USAGE_EXIT)


def settings_from(config_file: Path | None, **flags: Any) -> Settings:
    try:
        return load_settings(config_file, **flags)
    except ValidationError as error:
        fail(f"invalid settings: {describe(error)}")
    except OSError as error:
        fail(f"cannot read the configuration: {error}")
    except ValueError as error:  # bad YAML, TOML, JSON or UTF-8; too big, not a file, not a mapping
        fail(f"cannot read the configuration: {describe(error)}")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """CrisisMon: escalation and de-escalation indices per country dyad, and alerts."""


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--format", "file_format", type=click.Choice(FORMATS), default="auto", show_default=True)
@click.option(
    "--order", type=click.Choice(PLAY_ORDERS), default="event-time", show_default=True, help=ORDER_HELP
)
@click.option("--config", "config_file", type=click.Path(path_type=Path), help="YAML, TOML or JSON settings.")
@click.option("--json", "as_json", is_flag=True, help="Only alerts on stdout, one JSON object per line.")
@click.option(
    "--report", "report_dir", type=click.Path(path_type=Path), help="Write charts and an HTML page here."
)
@click.option(
    "--labels",
    "label_paths",
    multiple=True,
    type=click.Path(path_type=Path),
    help="A labels file, or a directory of *.labels.yaml: score the alerts against them (repeatable).",
)
@click.option(
    "--sweep",
    "sweep_specs",
    multiple=True,
    help="NAME=V1,V2,... over half_life, watch, warning, critical, clearing, non_state, window, lag,"
    " sigmas, min_events, dwell, memory: score a grid against the labels, each row with its alert"
    " budget over every dyad (needs --labels).",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1, max=256),
    help="Processes to play the dyads in, each a share of them, with the alerts of one process"
    " [default: backtest_jobs, else one per CPU, at most 8].",
)
def backtest(
    paths: tuple[Path, ...],
    file_format: str,
    order: PlayOrder,
    config_file: Path | None,
    as_json: bool,
    report_dir: Path | None,
    label_paths: tuple[Path, ...],
    sweep_specs: tuple[str, ...],
    jobs: int | None,
) -> None:
    """Run event files (native, GDELT, ICEWS; plain or zipped) through the engine offline.

    The summary gives the alert budget (alerts per 30 days of event time over every dyad)
    before any scores; with --json it goes to stderr with them, and only when --labels is given.
    """
    from services.backtest.budget import run_budget
    from services.backtest.labels import load_labelled, unread_events
    from services.backtest.run import run_backtest
    from services.backtest.scoring import evaluate
    from services.backtest.sweep import parse_sweep, run_sweep
    from services.backtest.tables import render_budget, render_scores, render_sweep
    from services.backtest.timeline import render_bad_rows, render_timeline

    settings = settings_from(config_file, backtest_jobs=jobs)
    config, options = settings.engine_config(), settings.reader_options(datetime.now(UTC), order)
    jobs = settings.backtest_processes()
    try:
        labelled = load_labelled(list(label_paths)) if label_paths else []
        axes = parse_sweep(sweep_specs)
    except ValueError as error:
        fail(str(error))
    crises = [labels for _, labels in labelled]
    if axes and not crises:
        fail("--sweep scores each setting against labels: give --labels too")
    if report_dir is not None:
        prepare_report_dir(report_dir)  # before the run: a bad path should not cost a long one
    for note in unread_events(labelled, list(paths)):
        click.echo(note, err=True)
    watched = {labels.dyad for labels in crises}
    # Terminated (`timeout`, a scheduler), a run stops as an interrupted one does: its parts are
    # ended and its temporary files removed, where SIGTERM's default would leave both behind.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        progress = sys.stderr.isatty()
        on_alert = emit if as_json else None
        result = run_backtest(paths, config, file_format, options, progress, watched, on_alert, jobs)
        sweep = run_sweep(list(paths), config, axes, crises, file_format, options, jobs) if axes else None
    except InputError as error:
        fail(str(error))
    for line in render_bad_rows(result.read):
        click.echo(line, err=True)
    if not as_json and not sweep:
        for line in render_timeline(result):
            click.echo(line)
    evaluation = evaluate(result, crises) if crises else None
    for labels in crises:
        if labels.dyad not in result.dyads:
            click.echo(f"labels {labels.name!r}: note: no record of {labels.dyad} in the inputs", err=True)
    budget = list(render_budget(run_budget(result))) if crises or not as_json else []
    scores = [*(render_scores(evaluation) if evaluation else []), *(render_sweep(sweep) if sweep else [])]
    for line in [line for section in (budget, scores) if section for line in ["", *section]]:
        click.echo(line, err=as_json)
    if report_dir is not None:
        from services.backtest.report import write_report

        try:
            page = write_report(result, report_dir, crises, evaluation, sweep)
        except OSError as error:
            fail(f"--report {report_dir}: cannot write the report: {error.strerror or error}")
        click.echo(f"report: {page}", err=True)


def emit(alert: Alert) -> None:
    """One alert as a JSON line, as it is raised: none is held for the end of the run."""
    click.echo(alert.model_copy(update={"emitted_at": datetime.now(UTC)}).model_dump_json())


def prepare_report_dir(report_dir: Path) -> None:
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        fail(f"--report {report_dir}: exists and is not a directory")
    except OSError as error:
        fail(f"--report {report_dir}: cannot create it: {error.strerror or error}")


def kafka_options(function: Any) -> Any:
    """--bootstrap, --namespace and --config, shared by every command that talks to Kafka."""
    for option in reversed(
        [
            click.option("--bootstrap", help="Kafka HOST:PORT [CRISISMON_KAFKA_BOOTSTRAP, 127.0.0.1:9092]."),
            click.option("--namespace", help="Topic prefix, e.g. a backtest run [CRISISMON_NAMESPACE]."),
            click.option("--config", "config_file", type=click.Path(path_type=Path), help="Settings file."),
        ]
    ):
        function = option(function)
    return function


class BootstrapErrors(logging.Handler):
    """Keeps the last error aiokafka logged instead of printing it: its exception for a
    broker it could not talk to says only "Unable to bootstrap"; the line it logged just before
    says why (a refused login, a certificate that does not verify, a refused connection)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.last: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.last = (record.getMessage().splitlines() or [""])[0]


def run_async(coroutine: Any) -> Any:
    """Run a coroutine; a broker that cannot be reached (or refuses the login) is one line and exit 2."""
    from aiokafka.errors import KafkaConnectionError, KafkaError

    errors = BootstrapErrors()
    aiokafka_log = logging.getLogger("aiokafka")
    aiokafka_log.handlers, aiokafka_log.propagate = [errors], False  # failures surface as exceptions here
    try:
        return asyncio.run(coroutine)
    except KafkaConnectionError as error:
        fail(f"cannot reach Kafka: {errors.last or error}")
    except KafkaError as error:
        fail(f"Kafka error: {error}")


@cli.command()
@kafka_options
@click.option("--web-port", type=int, help="Web server port [CRISISMON_WEB_PORT, 6066].")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Table storage [CRISISMON_DATA_DIR].")
def worker(
    bootstrap: str | None,
    namespace: str | None,
    config_file: Path | None,
    web_port: int | None,
    data_dir: Path | None,
) -> None:
    """Run the stream processors: crisis.events in; index updates, alerts, dead letters out.
    Waits for a broker that does not answer yet; a broker that refuses it (a wrong password, a
    certificate it does not trust) is one line and exit 2."""
    from aiokafka.errors import KafkaError

    from services.bootstrap import run_worker

    settings = settings_from(
        config_file, kafka_bootstrap=bootstrap, namespace=namespace, web_port=web_port, data_dir=data_dir
    )
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        run_worker(settings)
    except KafkaError as error:
        fail(f"Kafka refused the worker: {error}")


@cli.command()
@kafka_options
@click.option("--web-port", type=int, help="Web server port [CRISISMON_WEB_PORT, 6066].")
def api(bootstrap: str | None, namespace: str | None, config_file: Path | None, web_port: int | None) -> None:
    """Serve the dashboard, the API and /metrics on their own, reading the topics, as a worker
    serves them; beside workers run with api_view off, their processing shares nothing with it."""
    from aiokafka.errors import KafkaError

    from services.bootstrap import run_api

    settings = settings_from(config_file, kafka_bootstrap=bootstrap, namespace=namespace, web_port=web_port)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        run_api(settings)
    except KafkaError as error:
        fail(f"Kafka refused the API: {error}")
    except OSError as error:  # the port taken, the address not this machine's
        fail(f"cannot serve on {settings.web_host}:{settings.web_port}: {error.strerror or error}")


@cli.group()
def topics() -> None:
    """The contract's topics: crisis.events, crisis.events.dlq, crisis.index, crisis.alerts."""


@topics.command("create")
@kafka_options
def topics_create(bootstrap: str | None, namespace: str | None, config_file: Path | None) -> None:
    """Create the topics that are missing, with their partitions and retention (the worker does too)."""
    from schemas.topics import Topics
    from services.kafka.topics import ensure_topics

    settings = settings_from(config_file, kafka_bootstrap=bootstrap, namespace=namespace)
    created = run_async(ensure_topics(settings.kafka_connection(), Topics(settings.namespace)))
    click.echo(f"created: {', '.join(created)}" if created else "all topics exist")


def parse_speed(_: Any, __: Any, value: str) -> float | None:
    if value == "max":
        return None
    try:
        speed = float(value)
    except ValueError:
        raise click.BadParameter("give `max` or a factor such as 3600") from None
    if speed <= 0:
        raise click.BadParameter("the factor must be positive")
    return speed


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--format", "file_format", type=click.Choice(FORMATS), default="auto", show_default=True)
@click.option(
    "--order", type=click.Choice(PLAY_ORDERS), default="event-time", show_default=True, help=ORDER_HELP
)
@click.option(
    "--speed",
    default="max",
    show_default=True,
    callback=parse_speed,
    help="`max`, or event seconds per second (3600: one hour of event time per second).",
)
@kafka_options
def replay(
    paths: tuple[Path, ...],
    file_format: str,
    order: PlayOrder,
    speed: float | None,
    bootstrap: str | None,
    namespace: str | None,
    config_file: Path | None,
) -> None:
    """Produce event files to crisis.events in play order (see --order), keyed by dyad."""
    from replay.producer import replay as replay_files
    from schemas.topics import Topics
    from services.backtest.timeline import render_bad_rows
    from services.kafka.topics import ensure_topics

    settings = settings_from(config_file, kafka_bootstrap=bootstrap, namespace=namespace)
    kafka, topics = settings.kafka_connection(), Topics(settings.namespace)

    try:
        report = run_async(
            replay_files(
                paths,
                kafka,
                topics.events,
                file_format,
                speed,
                progress=sys.stderr.isatty(),
                options=settings.reader_options(datetime.now(UTC), order),
                when_read=lambda: ensure_topics(kafka, topics),  # none there: one line, exit 2
                outage_timeout=settings.kafka_outage_timeout.total_seconds(),
            )
        )
    except InputError as error:
        fail(str(error))
    for line in render_bad_rows(report.read):
        click.echo(line, err=True)
    read = report.read
    click.echo(
        f"replay {report.run_id}: {report.produced} records produced, {report.failed} failed"
        f" ({read.rows} rows read: {read.no_dyad} of no dyad, {read.merged} merged into the event"
        f" they repeat, {read.bad_count} bad)",
        err=True,
    )
    if report.failed:
        sys.exit(1)


def parse_since(_: Any, __: Any, value: str | None) -> datetime | None:
    """ISO 8601 (a date, or a time; UTC unless it says otherwise), or a span back from now."""
    if value is None:
        return None
    from services.core.config import parse_duration

    span = parse_duration(value)
    if isinstance(span, timedelta):
        return datetime.now(UTC) - span
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            "give a time such as 2018-11-25 or 2018-11-25T12:00Z, or a span such as 6h"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_poll(_: Any, __: Any, value: float | None) -> timedelta | None:
    if value is not None and value <= 0:
        raise click.BadParameter("give a number of seconds above 0")
    return None if value is None else timedelta(seconds=value)


def follow_options(function: Any) -> Any:
    """--poll, --once and --metrics-port, shared by every source, then the Kafka options."""
    for option in reversed(
        [
            click.option(
                "--poll",
                type=float,
                callback=parse_poll,
                help="Seconds between looks [CRISISMON_FOLLOW_POLL, 900], up to a fifth sooner at random.",
            ),
            click.option("--once", is_flag=True, help="Catch up, then exit (1 if a file failed)."),
            click.option(
                "--metrics-port",
                type=int,
                help="/metrics port [CRISISMON_FOLLOW_METRICS_PORT, 6067; 0: none].",
            ),
        ]
    ):
        function = option(function)
    return kafka_options(function)


@cli.group()
def follow() -> None:
    """Produce a live source to crisis.events as it publishes, restart-safe.

    Files are produced once each, in name order; which ones are done is kept in Kafka
    (crisis.follow.progress), so a restarted follower neither skips nor repeats a file. On
    the same files, the alerts are those of `crisismon backtest --order published`.
    """


@follow.command("gdelt")
@click.option(
    "--base-url", default=None, help="Where GDELT 2.0 publishes (a mirror, a test server). [GDELT's own]"
)
@click.option(
    "--since",
    callback=parse_since,
    help="Backfill from this time first: 2018-11-25, 2018-11-25T12:00Z, or a span back from now (6h, 2d).",
)
@follow_options
def follow_gdelt(
    base_url: str | None,
    since: datetime | None,
    poll: timedelta | None,
    once: bool,
    metrics_port: int | None,
    bootstrap: str | None,
    namespace: str | None,
    config_file: Path | None,
) -> None:
    """Follow GDELT 2.0's events exports, published every 15 minutes."""
    from replay.follow.gdelt import GDELT_BASE_URL, GdeltSource

    url = base_url or GDELT_BASE_URL
    if not url.startswith(("http://", "https://")):
        fail(f"--base-url {url!r}: give an http:// or https:// URL")
    settings = follow_settings(config_file, bootstrap, namespace, metrics_port)
    source = GdeltSource(url, since, settings.follow_timeout)
    run_follow(settings, source, once, poll, "gdelt")


@follow.command("dir")
@click.argument("path", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--format", "file_format", type=click.Choice(FORMATS), default="auto", show_default=True)
@follow_options
def follow_dir(
    path: Path,
    file_format: str,
    poll: timedelta | None,
    once: bool,
    metrics_port: int | None,
    bootstrap: str | None,
    namespace: str | None,
    config_file: Path | None,
) -> None:
    """Follow a folder another system drops event files into (any format `replay` reads).

    A file is read once it has not changed for follow_settle (5 s): write files under a
    temporary name (.part, .tmp, or hidden) and rename them when complete, or do not pause
    longer than that while writing.
    """
    from replay.follow.folder import FolderSource

    settings = follow_settings(config_file, bootstrap, namespace, metrics_port)
    run_follow(settings, FolderSource(path, settings.follow_settle), once, poll, file_format)


def follow_settings(
    config_file: Path | None, bootstrap: str | None, namespace: str | None, metrics_port: int | None
) -> Settings:
    settings = settings_from(
        config_file, kafka_bootstrap=bootstrap, namespace=namespace, follow_metrics_port=metrics_port
    )
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return settings


def run_follow(settings: Settings, source: Any, once: bool, poll: timedelta | None, file_format: str) -> None:
    """Run the follower; one line for a source that cannot be listed (with --once), a port that
    is taken or a machine that fails it, a summary when it stops."""
    from replay.follow.metrics import MetricsPortTaken
    from replay.follow.source import FetchError
    from services.bootstrap import run_follower

    try:
        report = run_async(run_follower(settings, source, once, poll or settings.follow_poll, file_format))
    except MetricsPortTaken as error:
        fail(str(error))
    except FetchError as error:
        click.echo(f"crisismon: cannot list {source.key}: {error}", err=True)
        sys.exit(1)
    except OSError as error:  # the machine's, not the source's: a full disk, no temporary folder
        click.echo(f"crisismon: follow stopped: {error}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("stopped", err=True)
        sys.exit(130)  # as a shell reports an interrupted command
    click.echo(
        f"follow {source.key}: {report.produced} files produced ({report.records} records),"
        f" {report.failed} failed; {report.done_before} done before",
        err=True,
    )
    if report.failed:
        sys.exit(1)


@cli.group()
def alerts() -> None:
    """Subscribe to the alert topic."""


@alerts.command("tail")
@kafka_options
@click.option(
    "--from-beginning",
    is_flag=True,
    help="Every alert kept, not only those published since the command started.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON alert per line.")
@click.option("--dyad", help="Only this dyad, e.g. IRN-PAK.")
@click.option(
    "--min-level",
    type=click.Choice([lv.value for lv in Level]),
    default="normal",
    show_default=True,
    help="Only alerts that touch this level or higher (rising to it or falling from it).",
)
@click.option("--idle-exit", type=float, help="Exit after this many seconds without a message.")
def alerts_tail(
    bootstrap: str | None,
    namespace: str | None,
    config_file: Path | None,
    from_beginning: bool,
    as_json: bool,
    dyad: str | None,
    min_level: str,
    idle_exit: float | None,
) -> None:
    """Print alerts as they arrive."""
    started = time.time()  # "new" alerts: published from here on, however long the broker takes
    from schemas.topics import Topics
    from services.backtest.timeline import alert_line
    from services.kafka.tail import tail_alerts

    settings = settings_from(config_file, kafka_bootstrap=bootstrap, namespace=namespace)

    def show(alert: Alert) -> None:
        if as_json:
            click.echo(alert.model_dump_json())
        else:
            click.echo(f"{alert.event_time:%Y-%m-%d %H:%M} {alert.dyad} {alert_line(alert)}")

    run_async(
        tail_alerts(
            settings.kafka_connection(),
            Topics(settings.namespace).alerts,
            show,
            from_beginning=from_beginning,
            dyad=dyad,
            min_level=Level(min_level),
            idle_exit=idle_exit,
            since=started,
        )
    )


@cli.group()
def broker() -> None:
    """A local single-node Apache Kafka (KRaft) for development and tests, from Maven Central jars."""


def broker_options(function: Any) -> Any:
    function = click.option("--kafka-version", help="Apache Kafka version [CRISISMON_KAFKA_VERSION].")(
        function
    )
    return click.option("--port", type=int, default=9092, show_default=True, help="Listener port.")(function)


def local_broker(port: int, kafka_version: str | None) -> Any:
    from devtools.broker import Broker

    return Broker.local(port, version=kafka_version or settings_from(None).kafka_version)


@broker.command("start")
@broker_options
@click.option(
    "--timeout", type=float, default=90, show_default=True, help="Seconds to wait for it to answer."
)
def broker_start(port: int, kafka_version: str | None, timeout: float) -> None:
    """Start the broker in the background (jars are fetched once into ~/.cache/crisismon)."""
    from devtools.broker import BrokerError, start

    target = local_broker(port, kafka_version)
    try:
        start(target, timeout=timeout)
    except BrokerError as error:
        click.echo(f"crisismon: broker failed to start: {error}", err=True)
        sys.exit(1)
    click.echo(f"Kafka {target.version} running at {target.bootstrap} (data in {target.data_dir})")


@broker.command("stop")
@broker_options
def broker_stop(port: int, kafka_version: str | None) -> None:
    """Stop the broker started on this port."""
    from devtools.broker import stop

    click.echo("stopped" if stop(local_broker(port, kafka_version)) else "not running")


@broker.command("status")
@broker_options
def broker_status(port: int, kafka_version: str | None) -> None:
    """Say whether the broker runs and answers (exit 0 only when it answers)."""
    from devtools.broker import status

    state = status(local_broker(port, kafka_version))
    answering = "answering" if state.answering else "not answering"
    click.echo(
        f"{state.bootstrap}: "
        + (f"running (pid {state.pid}), {answering}" if state.running else "not running")
    )
    sys.exit(0 if state.answering else 1)


@cli.command()
@click.option("--once", is_flag=True, help="Exit once the replay is processed, with a per-dyad summary.")
@click.option(
    "--speed",
    default=str(DEMO_SPEED_DEFAULT),
    show_default=True,
    callback=parse_speed,
    help="Event seconds per second, or `max`.",
)
@click.option(
    "--follow",
    "follow_url",
    metavar="URL",
    help="Follow GDELT 2.0 at URL (e.g. http://data.gdeltproject.org/gdeltv2/) instead of the article.",
)
@click.option(
    "--since", callback=parse_since, help="With --follow: backfill from this time (as follow gdelt)."
)
@kafka_options
@click.option("--web-port", type=int, help="Worker web port [CRISISMON_WEB_PORT, 6066].")
def demo(
    once: bool,
    speed: float | None,
    follow_url: str | None,
    since: datetime | None,
    bootstrap: str | None,
    namespace: str | None,
    config_file: Path | None,
    web_port: int | None,
) -> None:
    """The local stack replaying the article's crisis (or following GDELT live with --follow):
    broker, worker, events and alerts as they land."""
    from devtools.broker import BrokerError
    from replay.follow.source import FetchError
    from services.demo import Followed, run_demo

    if follow_url is not None and not follow_url.startswith(("http://", "https://")):
        fail(f"--follow {follow_url!r}: give an http:// or https:// URL")
    if since is not None and follow_url is None:
        fail("--since goes with --follow")
    followed = Followed(follow_url, since) if follow_url else None
    settings = settings_from(config_file, kafka_bootstrap=bootstrap, namespace=namespace, web_port=web_port)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # transient leader moves on new topics
    try:
        summary = run_demo(settings, config_file, once, speed, click.echo, followed)
    except FetchError as error:
        fail(f"cannot follow {follow_url}: {error}")
    except BrokerError as error:
        fail(f"broker failed to start: {error}")
    except KeyboardInterrupt:
        click.echo("stopped")
        return
    except TimeoutError as error:
        click.echo(f"crisismon: {error}", err=True)
        sys.exit(1)
    for line in summary.lines():
        click.echo(line)


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


if __name__ == "__main__":  # `python -m services.cli`, as the demo starts its worker
    main()
