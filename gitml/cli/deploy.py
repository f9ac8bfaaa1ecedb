"""`gitml deploy k8s|argo|kubeflow` and `gitml models generate-dockerfile|build-docker`."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import click

__all__ = ["build_docker", "deploy", "generate_dockerfile"]


def _root(ctx: click.Context) -> Path:
    from gitml.store.repo import find_repo_root

    repo = (ctx.find_root().obj or {}).get("repo")
    return find_repo_root(Path(repo) if repo else None)


def _target(ctx: click.Context, model_uri: str) -> Any:
    from gitml.deploy.target import resolve_target
    from gitml.registry.access import open_registry

    if not model_uri.startswith("models:/"):
        raise click.BadParameter("give a registered model: models:/NAME/STAGE, models:/NAME@ALIAS or models:/NAME/N", param_hint="-m")
    return resolve_target(model_uri, open_registry(str(_root(ctx))))


def _params(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="-P")
        out[key] = value
    return out


_image_options = [
    click.option("--base-image", default=None, help="Base image (default: python:3.11-slim)."),
    click.option("--gitml-requirement", default=None, help="How the image installs gitml (a pip requirement)."),
    click.option("--wheelhouse", type=click.Path(file_okay=False, exists=True), default=None, help="Install offline from this folder of wheels."),
    click.option("--index-url", default=None, help="Install from this package index (e.g. a local one)."),
]


def _with_image_options(f: Any) -> Any:
    for option in reversed(_image_options):
        f = option(f)
    return f


def _image_opts(base_image: str | None, gitml_requirement: str | None, wheelhouse: str | None, index_url: str | None) -> Any:
    from gitml.deploy.dockerfile import DEFAULT_BASE_IMAGE, ImageOptions, image_reference

    kwargs: dict[str, Any] = {"base_image": image_reference(base_image) if base_image else DEFAULT_BASE_IMAGE}
    if gitml_requirement:
        kwargs["gitml_requirement"] = gitml_requirement
    if wheelhouse:
        kwargs["wheelhouse"] = Path(wheelhouse)
    if index_url:
        kwargs["index_url"] = index_url
    return ImageOptions(**kwargs)


@click.command("generate-dockerfile")
@click.option("-m", "--model-uri", required=True, help="models:/NAME/STAGE, models:/NAME@ALIAS or models:/NAME/N.")
@click.option("-d", "--output-directory", default="gitml-dockerfile", show_default=True, help="Folder for the Dockerfile and its context.")
@_with_image_options
@click.pass_context
def generate_dockerfile(ctx: click.Context, model_uri: str, output_directory: str, **image: Any) -> None:
    """Write a Dockerfile (and its build context) serving the model version the URI names now."""
    from gitml.deploy.dockerfile import write_context
    from gitml.deploy.target import model_folder

    target = _target(ctx, model_uri)
    opts = _image_opts(**image)
    with tempfile.TemporaryDirectory(prefix="gitml-model-") as tmp:
        folder = model_folder(_root(ctx), target, Path(tmp) / "model")
        path = write_context(target, folder, Path(output_directory), opts)
    click.echo(f"Wrote {path} for {target.model_uri} ({target.git_tag}); build it with: docker build {output_directory}")


@click.command("build-docker")
@click.option("-m", "--model-uri", required=True, help="models:/NAME/STAGE, models:/NAME@ALIAS or models:/NAME/N.")
@click.option("-n", "--name", "image", default=None, help="Image name[:tag] (default: NAME:VERSION).")
@click.option("-d", "--output-directory", default=None, help="Keep the build context here (default: a temporary folder).")
@_with_image_options
@click.pass_context
def build_docker(ctx: click.Context, model_uri: str, image: str | None, output_directory: str | None, **image_args: Any) -> None:
    """Build an image serving the model version the URI names now, on port 8080, as a non-root user."""
    from gitml.deploy.dockerfile import build_image, image_reference, write_context
    from gitml.deploy.kubernetes import default_image
    from gitml.deploy.target import model_folder

    target = _target(ctx, model_uri)
    name = image_reference(image) if image else default_image(target)
    opts = _image_opts(**image_args)
    context = Path(output_directory) if output_directory else Path(tempfile.mkdtemp(prefix="gitml-image-"))
    with tempfile.TemporaryDirectory(prefix="gitml-model-") as tmp:
        folder = model_folder(_root(ctx), target, Path(tmp) / "model")
        write_context(target, folder, context, opts)
    image_id = build_image(context, name, base_image=None)
    click.echo(f"Built {name} ({image_id}) serving {target.model_uri} ({target.git_tag})")


@click.group("deploy")
def deploy() -> None:
    """Generate deployments: Kubernetes/KServe manifests, Argo and Kubeflow pipelines."""


@deploy.command("k8s")
@click.option("-m", "--model-uri", required=True, help="models:/NAME/STAGE, models:/NAME@ALIAS or models:/NAME/N.")
@click.option("-o", "--output-directory", default="k8s", show_default=True, help="Folder for the manifests.")
@click.option("--image", default=None, help="The model image (default: NAME:VERSION, as build-docker names it).")
@click.option("--namespace", default="default", show_default=True)
@click.option("--replicas", type=int, default=2, show_default=True)
@click.option("--max-replicas", type=int, default=None, help="HPA ceiling (default: 3x replicas).")
@click.option("--gpu", type=int, default=0, show_default=True, help="GPUs per replica.")
@click.option("--cpu", default="500m", show_default=True)
@click.option("--memory", default="1Gi", show_default=True)
@click.option("--service-type", default="ClusterIP", show_default=True)
@click.option("--kserve", is_flag=True, help="Write a KServe InferenceService (Open Inference Protocol v2) instead.")
@click.option("--kserve-version", default="0.15", show_default=True, help="Picks the deployment-mode annotation.")
@click.option("--apply", "do_apply", is_flag=True, help="kubectl apply the files (needs a kubeconfig context).")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
@click.pass_context
def k8s(ctx: click.Context, model_uri: str, output_directory: str, image: str | None, namespace: str, replicas: int,
        max_replicas: int | None, gpu: int, cpu: str, memory: str, service_type: str, kserve: bool,
        kserve_version: str, do_apply: bool, as_json: bool) -> None:
    """Kubernetes manifests pinned to the version the URI names now (stage names move; these do not)."""
    from gitml.deploy.kubernetes import (
        K8sOptions,
        apply_manifests,
        kserve_manifests,
        manifests,
        write_manifests,
    )

    opts = K8sOptions(image=image, namespace=namespace, replicas=replicas, max_replicas=max_replicas, gpu=gpu,
                      cpu=cpu, memory=memory, service_type=service_type, kserve_version=kserve_version)
    opts.check()
    target = _target(ctx, model_uri)
    docs = kserve_manifests(target, opts) if kserve else manifests(target, opts)
    paths = write_manifests(docs, output_directory)
    if as_json:
        click.echo(json.dumps({"model_uri": target.model_uri, "version": target.version, "files": [str(p) for p in paths]}))
    else:
        click.echo(f"Wrote {', '.join(str(p) for p in paths)} for {target.model_uri} ({target.git_tag})")
    if do_apply:
        click.echo(apply_manifests(paths).rstrip())


def _pipeline_args(f: Any) -> Any:
    f = click.option("-e", "--entry-point", default="main", show_default=True, help="The last step to run.")(f)
    f = click.option("-P", "--param", "params", multiple=True, help="A parameter, KEY=VALUE (repeatable).")(f)
    f = click.option("--image", required=True, help="The project image the steps run in.")(f)
    f = click.option("-o", "--output", default=None, help="File to write (default: standard output).")(f)
    f = click.argument("path", default=".", type=click.Path(exists=True, file_okay=False))(f)
    return f


def _emit(text: str, output: str | None) -> None:
    if output:
        Path(output).write_text(text)
        click.echo(f"Wrote {output}", err=True)
    else:
        click.echo(text, nl=False)


@deploy.command("argo")
@_pipeline_args
@click.option("--namespace", default=None)
def argo(path: str, entry_point: str, params: tuple[str, ...], image: str, output: str | None, namespace: str | None) -> None:
    """The project's step graph (depends_on, resources) as an Argo Workflow DAG."""
    from gitml.deploy.kubernetes import render
    from gitml.deploy.pipelines import argo_workflow, check_workflow
    from gitml.projects.spec import load_project

    wf = argo_workflow(load_project(path), entry_point, image, _params(params), namespace=namespace)
    check_workflow(wf)
    _emit(render([wf]), output)


@deploy.command("kubeflow")
@_pipeline_args
def kubeflow(path: str, entry_point: str, params: tuple[str, ...], image: str, output: str | None) -> None:
    """The project's step graph as a Kubeflow Pipelines v2 pipeline (IR YAML)."""
    from gitml.deploy.kubernetes import render
    from gitml.deploy.pipelines import kubeflow_pipeline
    from gitml.projects.spec import load_project

    _emit(render([kubeflow_pipeline(load_project(path), entry_point, image, _params(params))]), output)
