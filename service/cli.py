"""The `snippets` command: build and check the index (and, later, serve it)."""

from __future__ import annotations

import errno
import json
import os
import sys
import time
from pathlib import Path

import click

from index import build as index_build
from index.errors import BuildLockedError, IndexUnavailable, SeedError

from .config import Config


def _config_default(name: str) -> dict:
    """click's default and show_default from a Config setting: read when the command runs (a bad
    value is a usage error naming its variable), shown as `$VARIABLE or default`."""
    setting = vars(Config)[name]

    def read():
        try:
            return getattr(Config, name)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None

    return {"default": read, "show_default": f"${setting.variable} or {setting.default}"}


_WRITE_ERRORS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
}


def _write_failed(exc: OSError, index_dir: Path) -> str:
    """One line for a build the file system stopped: what happened, where, and that the index
    in service is unchanged (a build only switches CURRENT once everything is written)."""
    reason = _WRITE_ERRORS.get(exc.errno) or exc.strerror or type(exc).__name__
    where = Path(os.path.abspath(exc.filename)) if isinstance(exc.filename, str) else None
    if where is not None and Path(os.path.abspath(index_dir)) not in (where, *where.parents):
        return (f"error: cannot read {exc.filename}: {reason}; nothing was built and the "
                "index in service is unchanged")
    return (f"error: cannot write the index in {index_dir}: {reason}; the build was stopped "
            "and the index in service is unchanged")


@click.group()
def cli() -> None:
    """Patient-education snippets: build the index, check it, serve it."""


def _progress_printer():
    """On a terminal, one self-overwriting progress line; piped or in CI, nothing."""
    if not sys.stderr.isatty():
        return None
    last = [0.0]

    def show(documents: int, snippets: int, elapsed: float) -> None:
        if elapsed - last[0] < 0.2:
            return
        last[0] = elapsed
        click.echo(f"\r  documents read {documents:,}  snippets {snippets:,}  "
                   f"elapsed {elapsed:0.1f}s", nl=False, err=True)

    return show


def _summary(manifest: dict) -> str:
    counts = manifest["counts"]
    lines = [
        f"index version {manifest['version']}  generation {manifest['generation']}",
        f"built at {manifest['built_at']} in {manifest['build_seconds']:.2f}s"
        + (f", peak memory {manifest['build_peak_rss_mb']:,.0f} MB"
           if manifest.get("build_peak_rss_mb") is not None else ""),
        f"sources {counts['sources']:,}  snippets {counts['snippets']:,}",
    ]
    if counts["sources"] <= 20:
        lines.append("snippets per source:")
        lines += [f"  {sid:<28} {n:>6,}" for sid, n in counts["per_source"].items()]
    lines.append("snippets per condition:")
    lines += [f"  {slug:<28} {n:>6,}" for slug, n in counts["per_condition"].items()]
    lines.append("snippets per caveat:")
    lines += [f"  {cid:<36} {n:>6,}" for cid, n in counts["per_caveat"].items()]
    return "\n".join(lines)


@cli.command()
@click.option("--seeds", "seeds_dir", default="seeds", show_default=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Directory with articles, catalog.yaml, conditions.yaml, caveats.yaml.")
@click.option("--pages", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Index documents from a JSONL pages file instead of the seed articles.")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="With --pages: index only the first N pages.")
@click.option("--index", "index_dir", **_config_default("INDEX_DIR"),
              type=click.Path(file_okay=False, path_type=Path),
              help="Index directory (generations and the CURRENT pointer).")
@click.option("--wait", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Seconds to wait for another running build before giving up.")
def build(seeds_dir: Path, pages: Path | None, limit: int | None, index_dir: Path,
          wait: float) -> None:
    """Build a new index generation and switch to it."""
    progress = _progress_printer()
    started = time.monotonic()
    try:
        result = index_build.build(seeds_dir, index_dir, pages=pages, pages_limit=limit,
                                   progress=progress, wait_seconds=wait)
    except SeedError as exc:
        if progress:
            click.echo(err=True)
        for problem in exc.problems:
            click.echo(f"error: {problem}", err=True)
        click.echo(f"build failed: {len(exc.problems)} problem(s) in the inputs; "
                   "the index in service is unchanged", err=True)
        sys.exit(1)
    except BuildLockedError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except OSError as exc:
        if progress:
            click.echo(err=True)
        click.echo(_write_failed(exc, index_dir), err=True)
        sys.exit(1)
    if progress:
        click.echo(f"\r  done in {time.monotonic() - started:0.1f}s" + " " * 40, err=True)
    click.echo(_summary(result.manifest))


@cli.command()
@click.option("--index", "index_dir", **_config_default("INDEX_DIR"),
              type=click.Path(file_okay=False, path_type=Path))
def check(index_dir: Path) -> None:
    """Print the manifest of the index in service and verify it opens and its counts match."""
    try:
        manifest, problems = index_build.check(index_dir)
    except IndexUnavailable as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(json.dumps(manifest, indent=2, sort_keys=True))
    for problem in problems:
        click.echo(f"error: {problem}", err=True)
    if problems:
        sys.exit(1)
    click.echo(f"ok: {manifest['counts']['snippets']:,} snippets in {manifest['generation']}",
               err=True)


@cli.command()
@click.option("--bind", **_config_default("BIND"), help="HOST:PORT to listen on.")
@click.option("--workers", type=click.IntRange(min=1, max=64), **_config_default("WORKERS"))
@click.option("--seeds", "seeds_dir", **_config_default("SEEDS_DIR"),
              type=click.Path(path_type=Path),
              help="Seeds to build from when there is no index yet.")
@click.option("--index", "index_dir", **_config_default("INDEX_DIR"),
              type=click.Path(file_okay=False, path_type=Path))
def serve(bind: str, workers: int, seeds_dir: Path, index_dir: Path) -> None:
    """Serve the API with gunicorn, building the index from the seeds first if there is none."""
    # Every setting read now: a bad value is one error line here, not a worker failing to boot.
    try:
        for name in vars(Config):
            getattr(Config, name)
    except ValueError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    try:
        index_build.current_generation(index_dir)
    except IndexUnavailable:
        click.echo(f"no index in {index_dir}: building it from {seeds_dir}", err=True)
        try:
            result = index_build.build(seeds_dir, index_dir, wait_seconds=60)
        except (SeedError, BuildLockedError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        except OSError as exc:
            click.echo(_write_failed(exc, index_dir), err=True)
            sys.exit(1)
        click.echo(_summary(result.manifest), err=True)
    env = dict(os.environ, SNIPPETS_INDEX_DIR=str(index_dir.resolve()))
    # glibc gives each thread of a threaded worker its own malloc arena, and memory freed in
    # one is not reused by another; two arenas keep a worker's memory down (an operator's own
    # MALLOC_ARENA_MAX wins). glibc reads it at start-up, so it goes in gunicorn's environment.
    env.setdefault("MALLOC_ARENA_MAX", "2")
    args = [sys.executable, "-m", "gunicorn", "--config", "python:service.gunicorn_conf",
            "--no-control-socket", "--bind", bind, "--workers", str(workers)]
    click.echo(f"serving on http://{bind} with {workers} worker(s), index {index_dir}", err=True)
    os.execve(sys.executable, args, env)


@cli.command()
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("openapi.yaml"), show_default=True)
@click.option("--check", "check_only", is_flag=True,
              help="Exit 1 if the file differs from what the code generates.")
def openapi(output: Path, check_only: bool) -> None:
    """Write the OpenAPI spec generated from the code (commit the result)."""
    from service import create_app
    from service.docs import spec_yaml

    app = create_app()
    with app.app_context():
        text = spec_yaml(app.extensions["snippets_api"].spec.to_dict())
    if check_only:
        current = output.read_text(encoding="utf-8") if output.exists() else ""
        if current != text:
            click.echo(f"{output} is out of date: run `snippets openapi`", err=True)
            sys.exit(1)
        click.echo(f"{output} is up to date", err=True)
        return
    output.write_text(text, encoding="utf-8")
    click.echo(f"wrote {output}", err=True)


@cli.command("api-key")
def api_key() -> None:
    """Make a new API key: give the key to the client, put the hash in SNIPPETS_API_KEYS."""
    import secrets

    from service.security import hash_key

    key = secrets.token_urlsafe(32)
    click.echo(f"key:    {key}")
    click.echo(f"sha256: {hash_key(key)}")
    click.echo("Give the key to the client once; add the sha256 to SNIPPETS_API_KEYS "
               "(comma-separated). The service never stores or logs keys.", err=True)
