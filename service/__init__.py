"""The snippets service: a Flask API over the index (see create_app in the API issue)."""
