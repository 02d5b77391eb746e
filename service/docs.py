"""/openapi.yaml, /openapi.json and /docs: the spec, and Swagger UI rendering it for people.

Swagger UI's files come from the swagger-ui-py package and are served from here (never a CDN);
the page's only script besides Swagger UI's bundle is our own service/static/docs-init.js, so
the page runs under a CSP that allows scripts from this server only.
"""

from __future__ import annotations

import json
from pathlib import Path

import swagger_ui
import yaml
from flask import Blueprint, Response, abort, current_app, render_template, send_from_directory

blp = Blueprint("docs", __name__, static_folder="static", static_url_path="/docs/static")

# The files of Swagger UI the page loads, from the package (which ships more).
SWAGGER_UI_DIR = Path(swagger_ui.__file__).parent / "static"
SWAGGER_UI_FILES = frozenset({"swagger-ui-bundle.js", "swagger-ui.css", "LICENSE"})


def spec_dict() -> dict:
    return current_app.extensions["snippets_api"].spec.to_dict()


def spec_yaml(spec: dict) -> str:
    return yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=100)


def _rendered(key: str, render) -> str:
    # The spec is fixed once the app is built: render it once per process.
    text = current_app.extensions.get(key)
    if text is None:
        text = current_app.extensions[key] = render(spec_dict())
    return text


@blp.get("/openapi.yaml")
def openapi_yaml():
    return Response(_rendered("snippets_spec_yaml", spec_yaml), mimetype="application/yaml")


@blp.get("/openapi.json")
def openapi_json():
    return Response(_rendered("snippets_spec_json", lambda spec: json.dumps(spec, indent=1)),
                    mimetype="application/json")


@blp.get("/docs")
def docs_page():
    spec = spec_dict()
    return render_template("docs.html", info=spec["info"], openapi=spec["openapi"])


@blp.get("/docs/swagger-ui/<name>")
def swagger_ui_file(name: str):
    if name not in SWAGGER_UI_FILES:
        abort(404)
    response = send_from_directory(SWAGGER_UI_DIR, name, max_age=3600)
    if name == "LICENSE":
        response.mimetype = "text/plain"
    return response
