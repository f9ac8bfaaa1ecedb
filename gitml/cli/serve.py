"""`gitml models serve`: MLflow's scoring server command line, on gitml's server."""

from __future__ import annotations

import click

__all__ = ["serve"]


@click.command("serve")
@click.option(
    "-m",
    "--model-uri",
    required=True,
    help="models:/NAME/STAGE, models:/NAME@ALIAS, models:/NAME/N, runs:/ID/PATH or a folder.",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface to listen on (0.0.0.0 for all).",
)
@click.option("-p", "--port", type=int, default=5000, show_default=True, help="Port to listen on.")
@click.option(
    "-w",
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes sharing the port, each with its own copy of the model.",
)
@click.option(
    "--follow",
    is_flag=True,
    help="Watch the registry's tags and switch to the stage's or alias's new version without dropping requests.",
)
@click.option(
    "--follow-interval",
    type=click.FloatRange(min=0.2),
    default=5.0,
    show_default=True,
    help="Seconds between registry checks with --follow.",
)
@click.option(
    "--max-batch-size",
    type=click.IntRange(min=1),
    default=256,
    show_default=True,
    help="Most rows merged into one model call.",
)
@click.option(
    "--max-wait-ms",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="How long a batch waits for more rows (0: only what queued while the model was busy).",
)
@click.option(
    "--max-body-bytes",
    type=click.IntRange(min=1),
    default=50 * 1024 * 1024,
    show_default=True,
    help="Larger request bodies are refused with 413.",
)
@click.option(
    "--request-timeout",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    help="Seconds a client has to send a whole request (headers and body); slower ones are "
    "disconnected.",
)
@click.option(
    "--max-connections",
    type=click.IntRange(min=8),
    default=2048,
    show_default=True,
    help="Open connections at most (kept below the open-file limit); past it, the connection "
    "that has been sending its request the longest is closed.",
)
@click.option(
    "--model-threads",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Threads for the model's math (torch, BLAS); 0: the cores shared by the "
    "workers, unless OMP_NUM_THREADS is set.",
)
@click.option(
    "--env-manager",
    type=click.Choice(["local"]),
    default="local",
    help="Accepted for MLflow compatibility: gitml serves in the current environment.",
)
@click.option(
    "--name",
    "served_name",
    default=None,
    help="The model name Open Inference Protocol (V2) clients use (default: the registered name, "
    "or the folder's name).",
)
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    default="warning",
    show_default=True,
    help="uvicorn's log level.",
)
@click.pass_context
def serve(
    ctx: click.Context,
    model_uri: str,
    host: str,
    port: int,
    workers: int,
    follow: bool,
    follow_interval: float,
    max_batch_size: int,
    max_wait_ms: float,
    max_body_bytes: int,
    request_timeout: float,
    max_connections: int,
    model_threads: int,
    env_manager: str,
    served_name: str | None,
    log_level: str,
) -> None:
    """Serve a model over REST: POST /invocations, GET /ping, /health, /version, /metrics,
    and the Open Inference Protocol (V2): /v2/health/*, /v2/models/NAME[/versions/V]/infer.

    The URI is resolved before the server starts (a model, stage or alias that is not there
    is an error); the model then loads while the port is already open, and /ping answers 200
    once it is ready.
    """
    from gitml import config
    from gitml.serving.app import ServeOptions
    from gitml.serving.loading import resolve_ref
    from gitml.serving.server import serve as run_server

    repo = (ctx.find_root().obj or {}).get("repo")
    if repo:
        config.set_tracking_uri(str(repo))  # this process; the workers get it in the options
    if follow and not model_uri.startswith("models:/"):
        raise click.UsageError("--follow needs a models:/ URI (a stage, an alias or latest)")
    ref = resolve_ref(model_uri)
    options = ServeOptions(
        ref=ref,
        max_batch_size=max_batch_size,
        max_wait_ms=max_wait_ms,
        max_body_bytes=max_body_bytes,
        follow=follow,
        follow_interval_s=follow_interval,
        model_threads=model_threads,
        request_timeout_s=request_timeout,
        max_connections=max_connections,
        name=served_name,
        repo=str(repo) if repo else None,
    )
    what = f"{ref.name} version {ref.version}" if ref.version else ref.source
    click.echo(
        f"Serving {model_uri} ({what}) on http://{host}:{port} with {workers} worker(s); "
        "GET /ping answers 200 once the model is loaded",
        err=True,
    )
    status = run_server(options, host=host, port=port, workers=workers, log_level=log_level)
    if status:
        click.echo(f"Error: the model {model_uri} could not be loaded", err=True)
        ctx.exit(status)
