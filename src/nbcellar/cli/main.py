"""The ``nbcellar`` command: a click group whose errors reach the user as one line."""

from __future__ import annotations

import errno
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

import click

from nbcellar import __version__
from nbcellar.cli.context import store_option
from nbcellar.errors import NbcellarError
from nbcellar.notebook.formats import skip_iri_grammars

skip_iri_grammars()  # (see there: seconds saved on every command that reads a notebook)


@contextmanager
def _warnings_as_lines() -> Iterator[None]:
    """Show nbcellar's own warnings as ``nbcellar: warning: ...``, each text once per command
    (a notebook read twice warns once), instead of Python's file, line and source."""
    from nbcellar.errors import NbcellarWarning

    shown: set[str] = set()
    python_way = warnings.showwarning

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        if not issubclass(category, NbcellarWarning):
            python_way(message, category, filename, lineno, file, line)
        elif str(message) not in shown:
            shown.add(str(message))
            click.echo(f"nbcellar: warning: {message}", err=True)

    with warnings.catch_warnings():
        warnings.simplefilter("always", NbcellarWarning)  # each shown (once) as a line
        warnings.showwarning = show
        yield


class _Group(click.Group):
    """Turns NbcellarError into ``nbcellar: error: ...`` and exit code 2; Ctrl-C into exit 130;
    nbcellar's warnings into ``nbcellar: warning: ...`` lines."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with _warnings_as_lines():
                return super().invoke(ctx)
        except NbcellarError as exc:
            click.echo(f"nbcellar: error: {exc}", err=True)
            sys.exit(2)
        except click.UsageError as exc:  # (an option or argument: the same one-line form)
            where = exc.ctx.command_path if exc.ctx is not None else "nbcellar"
            click.echo(f"nbcellar: error: {exc.format_message()} (see '{where} --help')",
                       err=True)  # fmt: skip
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("nbcellar: interrupted", err=True)
            sys.exit(130)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS):
                raise
            where = f" writing {exc.filename}" if exc.filename else " writing the output"
            _quiet_stdout()  # (what is left to flush would fail again at exit)
            click.echo(f"nbcellar: error: {exc.strerror}{where}", err=True)
            sys.exit(1)


def _quiet_stdout() -> None:
    import os

    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - the process ends next


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="nbcellar")
@store_option
def cli() -> None:
    """nbcellar gives Jupyter notebooks a memory."""


def _register() -> None:
    from nbcellar.cli.analyze import analyze
    from nbcellar.cli.build import build
    from nbcellar.cli.checkpoints import checkpoints
    from nbcellar.cli.compare import compare
    from nbcellar.cli.demo import demo
    from nbcellar.cli.diff import diff
    from nbcellar.cli.init import init
    from nbcellar.cli.jobs import jobs
    from nbcellar.cli.report import report
    from nbcellar.cli.run import run
    from nbcellar.cli.runs import runs
    from nbcellar.cli.show import show
    from nbcellar.cli.smoke import smoke
    from nbcellar.cli.status import status
    from nbcellar.cli.store import store
    from nbcellar.cli.ui import ui

    cli.add_command(demo)
    cli.add_command(run)
    cli.add_command(runs)
    cli.add_command(jobs)
    cli.add_command(checkpoints)
    cli.add_command(show)
    cli.add_command(compare)
    cli.add_command(diff)
    cli.add_command(report)
    cli.add_command(status)
    cli.add_command(ui)
    cli.add_command(analyze)
    cli.add_command(build)
    cli.add_command(smoke)
    cli.add_command(init)
    cli.add_command(store)


_register()


def main() -> None:
    import os

    try:
        os.getcwd()
    except FileNotFoundError:
        click.echo("nbcellar: error: the working directory no longer exists; cd to a folder "
                   "that does", err=True)  # fmt: skip
        sys.exit(2)
    _tolerant_streams()
    cli(prog_name="nbcellar")


def _tolerant_streams() -> None:
    """A terminal or pipe that cannot encode a character (``PYTHONIOENCODING=ascii``, a C locale)
    shows it as "?" instead of ending the command with a UnicodeEncodeError."""
    import io

    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and stream.errors == "strict":
            stream.reconfigure(errors="replace")
