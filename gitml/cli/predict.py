"""`gitml models predict`: score a JSON or CSV file with a model, as the scoring server would."""

from __future__ import annotations

import json
from pathlib import Path

import click

__all__ = ["predict"]

_SERVING_FIELDS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def _normalise_json(body: bytes) -> bytes:
    # An input_example.json in split form ({"columns", "data"}) or a bare list is accepted too.
    try:
        payload = json.loads(body)
    except ValueError:
        return body  # the parser reports malformed JSON
    if isinstance(payload, dict) and not any(k in payload for k in _SERVING_FIELDS):
        if "columns" in payload and "data" in payload:
            return json.dumps({"dataframe_split": payload}).encode()
    if isinstance(payload, list):
        records = bool(payload) and all(isinstance(r, dict) for r in payload)
        return json.dumps({"dataframe_records" if records else "inputs": payload}).encode()
    return body


@click.command("predict")
@click.option("-m", "--model-uri", required=True, help="A model path, runs:/<run_id>/<path> or models:/<name>/<version>.")
@click.option(
    "-i",
    "--input-path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Input file: JSON (MLflow's serving formats, or a list) or CSV with a header row.",
)
@click.option(
    "-o",
    "--output-path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the predictions here (default: standard output).",
)
@click.option(
    "-t",
    "--content-type",
    type=click.Choice(["json", "csv"]),
    default=None,
    help="Input format (default: from the file extension).",
)
@click.pass_context
def predict(
    ctx: click.Context,
    model_uri: str,
    input_path: Path,
    output_path: Path | None,
    content_type: str | None,
) -> None:
    """Predict with a model on a JSON or CSV file; prints {"predictions": ...} as JSON."""
    from gitml.models.predictor import load_model
    from gitml.serving.formats import dump_predictions, input_spec, merge_inputs, parse_request

    repo = ctx.obj.get("repo") if ctx.obj else None
    if repo:
        from gitml.fluent.tracking import set_tracking_uri

        set_tracking_uri(repo)
    kind = content_type or ("csv" if input_path.suffix.lower() == ".csv" else "json")
    body = input_path.read_bytes()
    if kind == "json":
        body = _normalise_json(body)
    model = load_model(model_uri)
    parsed = parse_request(body, "text/csv" if kind == "csv" else "application/json", input_spec(model))
    predictions = model.predict(merge_inputs([parsed]), params=parsed.params)
    out = dump_predictions(predictions)
    if output_path is not None:
        output_path.write_bytes(out + b"\n")
    else:
        click.echo(out.decode())
