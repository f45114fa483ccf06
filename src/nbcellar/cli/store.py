"""``nbcellar store``: look after the store (info, verify, gc, prune)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from nbcellar.cli.context import context_store_root, open_context_store, store_option

if TYPE_CHECKING:
    from nbcellar.store.maintenance import GcReport


def _size(nbytes: int) -> str:
    value = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{int(value)} B"
        value /= 1024
    raise AssertionError("unreachable")


@click.group()
@store_option
def store() -> None:
    """Inspect, check and clean the store (.nbcellar/)."""


@store.command()
@store_option
@click.pass_context
def info(ctx: click.Context) -> None:
    """Where the store is, how big it is, and what it holds."""
    if not context_store_root(ctx).exists():
        click.echo(f"no store at {context_store_root(ctx)} yet (the first 'nbcellar run' makes it)")
        return
    opened = open_context_store(ctx)
    details = opened.info()
    if opened.url is not None:
        click.echo(f"shared:     {opened.url}")
        click.echo(f"local copy: {details.root}")
    else:
        click.echo(f"store:      {details.root}")
    click.echo(f"size:       {_size(details.bytes_on_disk)} in {details.blobs} objects")
    if details.runs_bytes:
        click.echo(f"runs:       {_size(details.runs_bytes)} in {details.runs} run folders "
                   "(executed notebooks, artifacts, kept sources)")  # fmt: skip
    if details.temporary_bytes:
        click.echo(
            f"temporary:  {_size(details.temporary_bytes)} being written (or left by a "
            "writer that stopped: removed an hour later, when the store is next opened)"
        )
    click.echo(f"snapshots:  {details.snapshots} ({details.variables} variables, "
               f"{details.values} distinct values)")  # fmt: skip
    click.echo(f"schema:     version {details.schema_version}")


@store.command()
@store_option
@click.pass_context
def verify(ctx: click.Context) -> None:
    """Check every object against its hash; exit 1 if anything is damaged or missing."""
    if not context_store_root(ctx).exists():
        click.echo(f"no store at {context_store_root(ctx)}: nothing to check")
        return
    opened = open_context_store(ctx)
    report = opened.verify()
    if opened.url is not None:
        click.echo(f"shared store {opened.url}: every journal entry applied here was signed "
                   "and checked; objects are checked when fetched")  # fmt: skip
    click.echo(f"checked {report.checked} objects ({_size(report.checked_bytes)})")
    if report.unreferenced:
        click.echo(f"{report.unreferenced} objects are used by no snapshot ('nbcellar store gc')")
    for damage in report.damaged:
        users = ", ".join(f"{name} in snapshot {snap}" for snap, name in damage.used_by[:5])
        more = f" and {len(damage.used_by) - 5} more" if len(damage.used_by) > 5 else ""
        click.echo(f"damaged: object {damage.key}: {damage.problem}; holds {users or 'nothing'}"
                   f"{more}", err=True)  # fmt: skip
    if not report.ok:
        click.echo(
            f"nbcellar: error: {len(report.damaged)} damaged objects; the variables named above "
            "cannot be restored, the rest of the store is fine",
            err=True,
        )
        sys.exit(1)
    click.echo("store is intact")


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def _age(_ctx: click.Context, _param: click.Parameter, value: str | None) -> float | None:
    """``30d``, ``12h``, ``90m``, ``3600s``, ``2w`` in seconds."""
    import re

    if value is None:
        return None
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", value)
    if found is None:
        raise click.BadParameter(f"{value!r} is not an age such as 30d, 12h or 90m")
    return float(found.group(1)) * _UNITS[found.group(2)]


REMOTE_HELP = (
    "For a shared store, also delete its objects that no client's record uses (after "
    "reading the whole journal), unless written less than --grace ago."
)


@store.command()
@click.option("--remote", is_flag=True, help=REMOTE_HELP)
@click.option(
    "--grace", callback=_age, default="1h", show_default=True,
    metavar="AGE", help="With --remote: keep unused objects younger than AGE (being sent).",
)  # fmt: skip
@store_option
@click.pass_context
def gc(ctx: click.Context, remote: bool, grace: float) -> None:
    """Remove objects no snapshot uses; never anything reachable or being written."""
    if not context_store_root(ctx).exists():
        click.echo(f"no store at {context_store_root(ctx)}: nothing to collect")
        return
    opened = open_context_store(ctx)
    report = opened.gc(remote=remote, grace=grace)
    click.echo(f"removed {report.removed} objects, freed {_size(report.freed_bytes)}; "
               f"kept {report.kept}")  # fmt: skip
    _say_shared(opened.url, report, remote)


def _say_shared(url: str | None, report: GcReport, remote: bool) -> None:
    if url is None:
        return
    if remote:
        click.echo(f"{url}: removed {report.shared_removed} objects no record uses, freed "
                   f"{_size(report.shared_freed_bytes)}; kept {report.shared_kept}")  # fmt: skip
    else:
        click.echo(f"(from the local copy only; 'nbcellar store gc --remote' also collects "
                   f"{url})")  # fmt: skip


@store.command()
@click.option(
    "--shared", "url", metavar="URL", required=True,
    help="The URL of the new shared store (s3://bucket/prefix, file:///nfs/store).",
)  # fmt: skip
def init(url: str) -> None:
    """Make a shared store at URL, signed with a new key kept in your config folder (or the
    key in $NBCELLAR_STORE_KEY)."""
    from nbcellar.store.shared import Remote, is_url, normal_url
    from nbcellar.store.signing import KEY_VARIABLE, find_key, key_file, new_key, write_key_file

    if not is_url(url):
        raise click.UsageError(f"{url!r} is not a URL (s3://bucket/prefix, file:///nfs/store)")
    url = normal_url(url)
    found = find_key(url)
    key = found[0] if found is not None else new_key()
    made = Remote.initialise(url, key)
    where = found[1] if found is not None else str(write_key_file(url, key))
    click.echo(f"{'made' if made else 'already made'}: shared store {url}")
    click.echo(f"key: {where} (keep it secret: whoever holds it can make you run their code)")
    path = key_file(url)
    click.echo(f"teammates: copy it to {path} on their machine (mode 0600), or set "
               f"{KEY_VARIABLE} to its content")  # fmt: skip
    click.echo(f"workers: give them {KEY_VARIABLE} in their environment; then "
               f"'nbcellar run NB --store {url}' anywhere")  # fmt: skip


@store.command()
@click.option(
    "--older-than", callback=_age, metavar="AGE",
    help="Forget cache entries made more than AGE ago (30d, 12h, 90m).",
)  # fmt: skip
@click.option(
    "--superseded", is_flag=True,
    help="Forget the entries a later run of the same cell replaced (edited upstream, "
    "refreshed, other parameter values): each cell keeps its latest.",
)  # fmt: skip
@click.option("--remote", is_flag=True, help=REMOTE_HELP + " (--grace: 1h)")
@store_option
@click.pass_context
def prune(ctx: click.Context, older_than: float | None, superseded: bool, remote: bool) -> None:
    """Forget cache entries, then remove the objects nothing else uses (as gc does).

    A cell whose entry is forgotten runs again the next time. Run records, their logs and
    executed notebooks are kept."""
    from nbcellar.cache.prune import prune as prune_cache

    if older_than is None and not superseded:
        raise click.UsageError("say what to prune: --superseded, --older-than AGE, or both")
    root = context_store_root(ctx)
    if not root.exists():
        click.echo(f"no store at {root}: nothing to prune")
        return
    store = open_context_store(ctx)
    try:
        report = prune_cache(store, older_than=older_than, superseded=superseded)
        freed = store.gc(remote=remote)
    finally:
        store.close()
    click.echo(f"forgot {report.entries} cache entries (kept {report.kept}); removed "
               f"{freed.removed} objects, freed {_size(freed.freed_bytes)}")  # fmt: skip
    _say_shared(store.url, freed, remote)
