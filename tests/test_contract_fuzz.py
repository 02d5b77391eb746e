"""Contract fuzzing: schemathesis drives every operation in openapi.yaml in-process (WSGI).

Each generated request, valid or deliberately invalid, goes through the real app over a real
index, and its response is checked with ALL of schemathesis' default checks: no 5xx, the status
code and content type are documented, the body matches its schema, invalid input is rejected,
valid input is accepted, and so on. The run is reproducible: a fixed seed (which schemathesis
gives hypothesis in place of derandomize), and a bounded number of examples per operation.

schemathesis 4 runs three phases under pytest, all enabled by default: explicit examples from
the spec, coverage (boundary and negative values derived from each schema) and fuzzing
(hypothesis-generated cases, positive and negative). The counts per operation, phase and mode
are kept in CASES and checked by the last test.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, settings
from schemathesis.core.result import Ok

from index.build import build
from service import create_app

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SPEC_FILE = ROOT / "openapi.yaml"
MAX_EXAMPLES = 100  # per operation, for the fuzzing phase
SEED = 20261121
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}

# The schema is loaded when the module is collected, so the app must exist then. Serving the
# spec does not touch the index, so the index itself is built by the fixture below, only when
# these tests run.
INDEX_DIR = Path(tempfile.mkdtemp(prefix="snippets-fuzz-"))
atexit.register(shutil.rmtree, INDEX_DIR, ignore_errors=True)
DATA_DIR = Path(tempfile.mkdtemp(prefix="snippets-fuzz-data-"))  # feedback counts
atexit.register(shutil.rmtree, DATA_DIR, ignore_errors=True)
app = create_app({"INDEX_DIR": str(INDEX_DIR), "TESTING": True, "RATE_LIMIT": "off",
                  "DATA_DIR": str(DATA_DIR),
                  # An unexpected error is a 500 response the checks see, not a test exception.
                  "PROPAGATE_EXCEPTIONS": False})
# An explicit config: a fixed seed, and no schemathesis.toml picked up from the working directory.
# /infobutton has rules across parameters that OpenAPI cannot state (a code needs its code
# system; a code or a display name is needed; indexed criteria): a request valid parameter by
# parameter may still be a 400 there, which must still be a problem naming the parameter.
INFOBUTTON_ACCEPTED = ["2XX", "3XX", "400", "401", "403", "404", "409", "429", "5XX"]
schema = schemathesis.openapi.from_wsgi(
    "/openapi.yaml", app, config=schemathesis.config.SchemathesisConfig.from_dict({
        "seed": SEED, "operations": [{
            "include-path": "/infobutton", "checks": {"positive_data_acceptance": {
                "expected-statuses": INFOBUTTON_ACCEPTED}}}]}))

CASES: Counter[tuple[str, str, str]] = Counter()  # (operation, phase, generation mode) -> cases


@pytest.fixture(scope="module", autouse=True)
def fuzz_index():
    build(SEEDS, INDEX_DIR)
    yield INDEX_DIR
    app.extensions["snippets_index"].close()


def spec_operations() -> set[str]:
    spec = yaml.safe_load(SPEC_FILE.read_text(encoding="utf-8"))
    return {f"{method.upper()} {path}" for path, item in spec["paths"].items()
            for method in item if method in HTTP_METHODS}


def schema_operations() -> set[str]:
    operations = set()
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"an operation schemathesis cannot test: {result!r}"
        operations.add(result.ok().label)
    return operations


def test_the_fuzzer_covers_every_operation_in_openapi_yaml():
    expected = spec_operations()
    assert len(expected) >= 10  # the spec file was read, not an empty document
    assert schema_operations() == expected


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.data_too_large])
def test_api_honours_its_contract(case):
    CASES[(case.operation.label, case.meta.phase.name.value,
           case.meta.generation.mode.value)] += 1
    case.call_and_validate()


def operations_with_examples() -> set[str]:
    """Operations whose parameters or request body carry an `example`/`examples` in the spec."""
    def has_example(node) -> bool:
        if isinstance(node, dict):
            return bool({"example", "examples"} & set(node)) or any(map(has_example,
                                                                        node.values()))
        return isinstance(node, list) and any(map(has_example, node))

    spec = yaml.safe_load(SPEC_FILE.read_text(encoding="utf-8"))
    return {f"{method.upper()} {path}" for path, item in spec["paths"].items()
            for method, operation in item.items() if method in HTTP_METHODS
            and has_example([operation.get("parameters"), operation.get("requestBody")])}


def test_every_phase_reached_every_operation():
    """Runs after the fuzz tests (file order): every operation got coverage and fuzzing cases,
    those with examples in the spec got them sent, and invalid (negative) cases were sent too."""
    if not CASES:
        pytest.skip("the fuzz tests did not run in this session")
    per_operation: dict[str, Counter[str]] = {}
    for (label, phase, mode), count in sorted(CASES.items()):
        per_operation.setdefault(label, Counter())[f"{phase}/{mode}"] += count
    for label, counts in per_operation.items():
        print(f"{label:<36} {sum(counts.values()):>4} cases  {dict(counts)}")
    print(f"total: {sum(CASES.values())} cases over {len(per_operation)} operations")
    assert set(per_operation) == spec_operations()
    for label, counts in per_operation.items():
        phases = {key.split("/")[0] for key in counts}
        assert {"coverage", "fuzzing"} <= phases, (label, counts)
        if label in operations_with_examples():
            assert "examples" in phases, (label, counts)
    negative = {label for (label, _, mode) in CASES if mode == "negative"}
    assert negative == spec_operations(), "every operation was sent invalid input"
