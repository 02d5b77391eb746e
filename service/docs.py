"""/openapi.yaml and /docs: the spec, and the same spec rendered for people (no CDN assets)."""

from __future__ import annotations

import yaml
from flask import Blueprint, Response, current_app, render_template

blp = Blueprint("docs", __name__, static_folder="static", static_url_path="/docs/static")


def spec_dict() -> dict:
    return current_app.extensions["snippets_api"].spec.to_dict()


def spec_yaml(spec: dict) -> str:
    return yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=100)


@blp.get("/openapi.yaml")
def openapi_yaml():
    # The spec is fixed once the app is built: render it once per process.
    rendered = current_app.extensions.get("snippets_spec_yaml")
    if rendered is None:
        rendered = current_app.extensions["snippets_spec_yaml"] = spec_yaml(spec_dict())
    return Response(rendered, mimetype="application/yaml")


@blp.get("/docs")
def docs_page():
    spec = spec_dict()
    operations = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "put", "delete", "patch"):
                operations.append((method.upper(), path, op))
    return render_template("docs.html", spec=spec, operations=operations)
