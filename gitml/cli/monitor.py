"""`gitml monitor`: the registry as Prometheus gauges (the seed's exporter, built in)."""

from __future__ import annotations

import click

__all__ = ["monitor"]


@click.command("monitor")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface to listen on (0.0.0.0 for all).",
)
@click.option(
    "-p", "--port", type=int, default=9465, show_default=True, help="Port of the /metrics endpoint."
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=15.0,
    show_default=True,
    help="Seconds between registry reads.",
)
@click.pass_context
def monitor(ctx: click.Context, host: str, port: int, interval: float) -> None:
    """Export, for every registered model, the metrics of the run behind each version in each stage or alias.

    Example sample: gitml_model_metric{kind="stage",metric="accuracy",model="cnn",stage="production",version="3"} 0.97
    """
    from gitml import config
    from gitml.serving.registry_exporter import MonitorServer

    repo = (ctx.find_root().obj or {}).get("repo")
    if repo:
        config.set_tracking_uri(str(repo))
    server = MonitorServer(host=host, port=port, interval=interval)
    click.echo(
        f"Exporting registry metrics on http://{host}:{server.port}/metrics every {interval:g} s",
        err=True,
    )
    try:
        server.serve_forever()
    finally:
        server.stop()
