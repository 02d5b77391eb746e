"""Faults in the index directory, and recovery without a restart.

For each fault the process stays up, /readyz answers 503 with the reason, a search answers a
503 problem (never a 500), and a good build brings the SAME app (or server process) back to 200.
The last tests run a real gunicorn server (2 workers) over an index directory that builds are
written into while it serves; SNIPPETS_TEST_SKIP_SERVER=1 skips the server parts.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from api_helpers import ACCEPTANCE, SEEDS, add_article, assert_problem
from click.testing import CliRunner
from server_helpers import SKIP_SERVER, SNIPPETS, Server

from index import store
from index.build import CURRENT, TMP_PREFIX, build, generations
from service import create_app
from service.cli import cli

CORPUS = SEEDS.parent.parent / "shared" / "corpus" / "medquad-pages.jsonl"
# An article only the "variant" seeds have: its marker word tells which index answered.
VARIANT_SOURCE = "faults_sleep_diary"
VARIANT_MARKER = "quillwortian"
VARIANT_TEXT = (f"A {VARIANT_MARKER} sleep diary helps people with fibromyalgia notice which "
                "evening habits come before a night of poor sleep and more morning pain.")
# Pages of the NIH corpus for a build that runs long enough to be killed halfway.
KILL_PAGES = 300


# -- helpers -----------------------------------------------------------------------------------

@contextmanager
def running_app(index_dir: Path) -> Iterator:
    """A test client of one app over `index_dir`, kept for the whole test (no restart)."""
    app = create_app({"INDEX_DIR": str(index_dir), "TESTING": True, "RATE_LIMIT": "off",
                      # An unexpected error is the 500 a client would get, not a test exception.
                      "PROPAGATE_EXCEPTIONS": False})
    try:
        yield app.test_client()
    finally:
        app.extensions["snippets_index"].close()


def variant_seeds(tmp_path: Path) -> Path:
    """A copy of the seeds with one more article (so its builds have another version)."""
    seeds = tmp_path / "variant-seeds"
    shutil.copytree(SEEDS, seeds)
    add_article(seeds, VARIANT_SOURCE, "Keeping a Sleep Diary With Fibromyalgia", VARIANT_TEXT)
    return seeds


def assert_unavailable(client, *reasons: str) -> str:
    """/readyz and a search are 503 problems saying why (each of `reasons` is in the detail)."""
    assert client.get("/healthz").status_code == 200  # the process itself is fine
    ready = client.get("/readyz")
    body = assert_problem(ready, 503)
    assert ready.headers.get("Retry-After"), "a 503 tells the balancer when to retry"
    for reason in reasons:
        assert reason in body["detail"], body["detail"]
    search = client.get("/v1/snippets", query_string={"q": "sleep"})
    assert assert_problem(search, 503)["detail"] == body["detail"]
    return body["detail"]


def assert_serving(client, version: str, generation: str | None = None) -> dict:
    """/readyz is 200 with `version` (and `generation`), and the acceptance search answers."""
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.get_data(as_text=True)
    status = ready.get_json()
    assert status["version"] == version
    if generation is not None:
        assert status["generation"] == generation
    search = client.get("/v1/snippets", query_string=ACCEPTANCE)
    assert search.status_code == 200, search.get_data(as_text=True)
    body = search.get_json()
    assert body["index"]["version"] == version
    assert body["results"], "the acceptance query finds snippets"
    assert all("fibromyalgia" in hit["conditions"] for hit in body["results"])
    return body


def snippets_check(index_dir: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["check", "--index", str(index_dir)])
    return result.exit_code, result.output


def segment_file(generation: Path, suffix: str = ".pst") -> Path:
    """One file of the generation's Whoosh segment (one writer, one commit: one segment, kept
    as separate files): ".pst" the postings, ".trm" the term dictionary, "._stored.col" the
    stored fields."""
    found = sorted(p for p in generation.glob(f"*{suffix}") if p.name.startswith("MAIN_"))
    assert len(found) == 1, found
    return found[0]


def corrupt_middle(generation: Path, suffix: str, count: int = 64) -> None:
    """Overwrite `count` bytes in the middle of one segment file with fixed pseudo-random
    bytes."""
    part = segment_file(generation, suffix)
    length = part.stat().st_size
    assert length > 4 * count
    start = length // 2
    garbage = random.Random(20261121).randbytes(count)
    with part.open("r+b") as handle:
        handle.seek(start)
        assert handle.read(count) != garbage
        handle.seek(start)
        handle.write(garbage)


# Everything a client might ask of a damaged index; none of it may be a 500.
PROBE_QUERIES = ["sleep", "pain", "fatigue", "fibromyalgia", "vagus nerve", "stimulation",
                 "treatment", "depression", "anxiety", "exercise", "symptoms", "doctor",
                 '"vagus nerve stimulation"', "slep", ""]


def assert_no_500(client, snippet_ids: list[str]) -> Counter:
    """Every answer is a success, a 404 or a 503 problem; returns the status counts."""
    statuses: Counter = Counter()
    requests_ = [("/v1/snippets", {"q": q, "limit": 50}) for q in PROBE_QUERIES]
    requests_ += [(f"/v1/snippets/{sid}", {}) for sid in snippet_ids]
    requests_ += [("/readyz", {}), ("/v1/sources", {}), ("/v1/conditions", {}),
                  ("/v1/caveats", {}), ("/v1/snippets", {"condition": "fibromyalgia"}),
                  ("/infobutton", {"mainSearchCriteria.v.c": "M79.7",
                                   "mainSearchCriteria.v.cs": "2.16.840.1.113883.6.90"})]
    for path, params in requests_:
        response = client.get(path, query_string=params)
        assert response.status_code < 500 or response.status_code == 503, \
            (path, params, response.status_code, response.get_data(as_text=True))
        if response.status_code == 503:
            assert_problem(response, 503)
        statuses[response.status_code] += 1
    return statuses


# -- a. no index at all ----------------------------------------------------------------------

@pytest.mark.parametrize("exists", [True, False], ids=["empty-dir", "no-dir"])
def test_no_index_yet_is_503_and_a_build_serves_without_restart(tmp_path, exists):
    index_dir = tmp_path / "index"
    if exists:
        index_dir.mkdir()
    with running_app(index_dir) as client:
        assert_unavailable(client, "no index built yet", "snippets build")
        result = build(SEEDS, index_dir)
        assert_serving(client, result.manifest["version"], result.generation.name)


# -- b. CURRENT points at a deleted generation -----------------------------------------------

def test_current_pointing_at_a_deleted_generation_not_yet_opened(tmp_path):
    index_dir = tmp_path / "index"
    first = build(SEEDS, index_dir)
    shutil.rmtree(first.generation)
    assert (index_dir / CURRENT).is_symlink()
    with running_app(index_dir) as client:
        assert_unavailable(client, first.generation.name, "missing or incomplete")
        second = build(variant_seeds(tmp_path), index_dir)
        assert second.manifest["version"] != first.manifest["version"]
        assert_serving(client, second.manifest["version"], second.generation.name)


def test_generation_deleted_while_the_app_has_it_open(tmp_path):
    index_dir = tmp_path / "index"
    first = build(SEEDS, index_dir)
    version = first.manifest["version"]
    with running_app(index_dir) as client:
        served = assert_serving(client, version)
        snippet_ids = [hit["id"] for hit in served["results"]]
        shutil.rmtree(first.generation)
        # Open file handles may keep answering, or the app says 503: never a 500.
        statuses = assert_no_500(client, snippet_ids)
        for _ in range(3):
            search = client.get("/v1/snippets", query_string=ACCEPTANCE)
            if search.status_code == 200:
                assert search.get_json()["index"]["version"] == version
                assert [hit["id"] for hit in search.get_json()["results"]] == snippet_ids
            else:
                assert_problem(search, 503)
        second = build(variant_seeds(tmp_path), index_dir)
        body = assert_serving(client, second.manifest["version"], second.generation.name)
        assert VARIANT_SOURCE in {hit["citation"]["source_id"] for hit in body["results"]}
    assert statuses[200] + statuses[404] + statuses[503] == sum(statuses.values()), statuses


# -- c. damaged segment files ----------------------------------------------------------------

@pytest.mark.parametrize("keep", [0.5, 0.0], ids=["half", "empty"])
def test_truncated_segment_is_503_with_the_reason_until_a_good_build(tmp_path, keep):
    index_dir = tmp_path / "index"
    damaged = build(SEEDS, index_dir)
    segment = segment_file(damaged.generation)
    size = segment.stat().st_size
    os.truncate(segment, int(size * keep))
    with running_app(index_dir) as client:
        detail = assert_unavailable(client, damaged.generation.name)
        assert "cannot be opened" in detail or "damaged" in detail, detail
        assert_no_500(client, [])
        code, output = snippets_check(index_dir)
        assert code == 1, output
        assert "error:" in output and ("does not open" in output or "is damaged" in output), output
        repaired = build(SEEDS, index_dir)
        assert repaired.generation != damaged.generation
        assert_serving(client, repaired.manifest["version"], repaired.generation.name)
    assert snippets_check(index_dir)[0] == 0


PARTS = {"stored": "._stored.col", "terms": ".trm", "postings": ".pst"}


@pytest.mark.parametrize("part", list(PARTS))
def test_corrupted_segment_never_gives_a_500_and_a_good_build_recovers(tmp_path, part):
    index_dir = tmp_path / "index"
    damaged = build(SEEDS, index_dir)
    with running_app(index_dir) as client:
        ids = [hit["id"] for hit in client.get("/v1/snippets?limit=50").get_json()["results"]]
    assert ids
    corrupt_middle(damaged.generation, PARTS[part])
    with running_app(index_dir) as client:  # a fresh app: nothing of the index cached yet
        assert_no_500(client, ids)
        repaired = build(SEEDS, index_dir)
        assert_serving(client, repaired.manifest["version"], repaired.generation.name)
        assert assert_no_500(client, ids)[200] >= len(ids)


@pytest.mark.parametrize("part", ["stored", "terms"])
def test_corrupted_segment_is_reported_by_readyz_search_and_check(tmp_path, part):
    index_dir = tmp_path / "index"
    damaged = build(SEEDS, index_dir)
    corrupt_middle(damaged.generation, PARTS[part])
    unmet = []
    with running_app(index_dir) as client:
        ready = client.get("/readyz")
        if ready.status_code != 503 or damaged.generation.name not in ready.get_data(as_text=True):
            unmet.append(f"/readyz answered {ready.status_code} {ready.get_data(as_text=True)}")
        search = client.get("/v1/snippets", query_string={"q": "sleep"})
        if search.status_code != 503:
            unmet.append(f"q=sleep answered {search.status_code}")
    code, _ = snippets_check(index_dir)
    if code != 1:
        unmet.append(f"`snippets check` exited {code}")
    assert not unmet, "; ".join(unmet)
    with running_app(index_dir) as client:
        assert_unavailable(client, damaged.generation.name)


def rerecord(generation: Path) -> None:
    """Make the manifest agree with the files as they now are, so that only the arrays' own
    checks can find the damage (a copy or restore that also rewrote the manifest)."""
    manifest = store.read_json(generation / store.MANIFEST)
    manifest["files"] = store.file_checksums(generation)
    store.write_json(generation / store.MANIFEST, manifest)


def truncate_arrays(generation: Path) -> None:
    data = generation / "scoring.bin"
    os.truncate(data, data.stat().st_size // 2)


def shorten_a_term_list(generation: Path) -> None:
    header = json.loads((generation / "scoring.json").read_text(encoding="utf-8"))
    header["terms"]["text"] = header["terms"]["text"][:-1]
    (generation / "scoring.json").write_text(json.dumps(header), encoding="utf-8")


def garble_header(generation: Path) -> None:
    (generation / "scoring.json").write_text('{"format": 1, "bytes": ', encoding="utf-8")


def recount_documents(generation: Path) -> None:
    header = json.loads((generation / "scoring.json").read_text(encoding="utf-8"))
    header["documents"] += 1
    (generation / "scoring.json").write_text(json.dumps(header), encoding="utf-8")


@pytest.mark.parametrize("damage", [truncate_arrays, shorten_a_term_list, garble_header,
                                    recount_documents], ids=lambda f: f.__name__)
@pytest.mark.parametrize("manifest", ["stale", "rerecorded"])
def test_damaged_scoring_arrays_are_refused_at_open_with_the_reason(tmp_path, damage, manifest):
    index_dir = tmp_path / "index"
    damaged = build(SEEDS, index_dir)
    damage(damaged.generation)
    if manifest == "rerecorded":
        rerecord(damaged.generation)
    with running_app(index_dir) as client:
        detail = assert_unavailable(client, damaged.generation.name)
        assert "scoring" in detail, detail
        assert_no_500(client, [])
        code, output = snippets_check(index_dir)
        assert code == 1 and "scoring" in output, output
        repaired = build(SEEDS, index_dir)
        assert_serving(client, repaired.manifest["version"], repaired.generation.name)


# -- d. a build killed halfway ---------------------------------------------------------------

@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[Path, Server | None]]:
    """An index directory built from the seeds, and a real 2-worker gunicorn serving it (None
    when SNIPPETS_TEST_SKIP_SERVER=1). Builds in the tests below write into this directory."""
    tmp = tmp_path_factory.mktemp("served")
    index_dir = tmp / "index"
    build(SEEDS, index_dir)
    if SKIP_SERVER:
        yield index_dir, None
        return
    with Server(index_dir, tmp / "server.log", workers=2,
                env={"SNIPPETS_RATE_LIMIT": "off"}) as server:
        yield index_dir, server


def server_serves(server: Server, version: str) -> None:
    for _ in range(4):  # sync workers close each connection: requests reach both workers
        ready = server.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["version"] == version
        search = server.get("/v1/snippets", params=ACCEPTANCE)
        assert search.status_code == 200, search.text
        assert search.json()["index"]["version"] == version
        assert search.json()["results"]


def test_build_killed_halfway_leaves_the_service_on_the_last_good_generation(served, tmp_path):
    if not CORPUS.is_file():
        pytest.skip(f"{CORPUS} is not there")
    index_dir, server = served
    pages = tmp_path / "pages.jsonl"
    with CORPUS.open(encoding="utf-8") as corpus:
        pages.write_text("".join(line for _, line in zip(range(KILL_PAGES), corpus, strict=False)),
                         encoding="utf-8")
    link = os.readlink(index_dir / CURRENT)
    before = generations(index_dir)
    with running_app(index_dir) as client:
        version = client.get("/readyz").get_json()["version"]
        assert_serving(client, version)
        log = (tmp_path / "build.log").open("wb")
        process = subprocess.Popen(
            [str(SNIPPETS), "build", "--pages", str(pages), "--seeds", str(SEEDS),
             "--index", str(index_dir)], stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 90
            leftover = None
            while leftover is None:
                leftover = next(index_dir.glob(f"{TMP_PREFIX}*"), None)
                assert process.poll() is None, "the build finished before it could be killed"
                assert time.monotonic() < deadline, "no .tmp- directory appeared"
                time.sleep(0.01)
            time.sleep(0.3)  # let it write a little of the new generation
            # While the build writes, the service answers from the generation it has.
            assert_serving(client, version)
            if server is not None:
                server_serves(server, version)
            assert process.poll() is None, "the build finished before it could be killed"
            process.send_signal(signal.SIGKILL)
            assert process.wait(timeout=10) == -signal.SIGKILL
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            log.close()
        assert leftover.is_dir(), "the killed build left its half-written generation"
        assert os.readlink(index_dir / CURRENT) == link
        assert generations(index_dir) == before
        assert_serving(client, version)
        if server is not None:
            assert server.alive()
            server_serves(server, version)

        result = build(SEEDS, index_dir)  # the build lock died with the killed build
        assert not list(index_dir.glob(f"{TMP_PREFIX}*")), "the next build removes the leftover"
        assert os.readlink(index_dir / CURRENT) == result.generation.name
        assert_serving(client, result.manifest["version"], result.generation.name)
        if server is not None:
            server_serves(server, result.manifest["version"])


# -- e. a build that fails validation --------------------------------------------------------

UNKNOWN_SOURCE_CAVEAT = """
  - id: faults-unknown-source
    kind: evidence
    severity: info
    text: A caveat aimed at a source that is not in the catalogue.
    source: tests/test_faults.py
    last_reviewed: 2026-11-21
    applies_to:
      sources: [no_such_source]
"""


@pytest.mark.parametrize("breakage", ["yaml-syntax", "unknown-source"])
def test_build_failing_validation_leaves_the_service_unchanged(tmp_path, seeds_copy, breakage):
    index_dir = tmp_path / "index"
    good = build(SEEDS, index_dir)
    caveats = seeds_copy / "caveats.yaml"
    text = caveats.read_text(encoding="utf-8")
    if breakage == "yaml-syntax":
        caveats.write_text(text + "\n  - id: [unclosed\n", encoding="utf-8")
    else:
        caveats.write_text(text.rstrip("\n") + "\n" + UNKNOWN_SOURCE_CAVEAT, encoding="utf-8")
    with running_app(index_dir) as client:
        assert_serving(client, good.manifest["version"], good.generation.name)
        result = CliRunner().invoke(cli, ["build", "--seeds", str(seeds_copy),
                                          "--index", str(index_dir)])
        assert result.exit_code == 1, result.output
        assert "caveats.yaml" in result.output
        assert "the index in service is unchanged" in result.output
        assert os.readlink(index_dir / CURRENT) == good.generation.name
        assert generations(index_dir) == [good.generation]
        assert not list(index_dir.glob(f"{TMP_PREFIX}*"))
        assert_serving(client, good.manifest["version"], good.generation.name)

        fixed = build(variant_seeds(tmp_path), index_dir)
        assert fixed.manifest["version"] != good.manifest["version"]
        assert_serving(client, fixed.manifest["version"], fixed.generation.name)


# -- f. generation switches under load -------------------------------------------------------

LOAD_SECONDS = 6.0
CLIENTS = 6
BUILDS = 5


def test_generation_switches_under_load_lose_no_request(served, tmp_path):
    index_dir, server = served
    if server is None:
        pytest.skip("SNIPPETS_TEST_SKIP_SERVER=1")
    seeds = {"base": SEEDS, "variant": variant_seeds(tmp_path)}
    start = server.get("/readyz")
    assert start.status_code == 200
    versions = {start.json()["version"]: "start"}  # version -> which seeds built it
    built: list[str] = []
    snippet_id = server.get("/v1/snippets", params=ACCEPTANCE).json()["results"][0]["id"]

    failures: list[str] = []
    seen: Counter = Counter()
    search_answers: list[tuple[str, bool]] = []  # (index version, variant article in results)
    stop = threading.Event()
    lock = threading.Lock()

    def client(number: int) -> None:
        http = server.session()
        kinds = ["search", "ready", "snippet"]
        turn = number
        try:
            while not stop.is_set():
                kind = kinds[turn % len(kinds)]
                turn += 1
                try:
                    if kind == "search":
                        response = http.get(f"{server.base}/v1/snippets", timeout=10,
                                            params={**ACCEPTANCE, "limit": 50})
                    elif kind == "ready":
                        response = http.get(f"{server.base}/readyz", timeout=10)
                    else:
                        response = http.get(f"{server.base}/v1/snippets/{snippet_id}", timeout=10)
                except requests.RequestException as exc:
                    with lock:
                        failures.append(f"{kind}: {type(exc).__name__}: {exc}")
                    continue
                with lock:
                    seen[kind] += 1
                    if response.status_code != 200:
                        failures.append(f"{kind}: {response.status_code} {response.text[:300]}")
                    elif kind == "search":
                        body = response.json()
                        sources = {hit["citation"]["source_id"] for hit in body["results"]}
                        search_answers.append((body["index"]["version"],
                                               VARIANT_SOURCE in sources))
                    elif kind == "ready":
                        search_answers.append((response.json()["version"], None))
                    elif response.json()["id"] != snippet_id:
                        failures.append(f"snippet: asked {snippet_id}, got {response.text[:200]}")
        finally:
            http.close()

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(CLIENTS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    try:
        for number in range(BUILDS):
            # Builds spread over the load period (a slow build delays the next one).
            time.sleep(max(0.0, started + LOAD_SECONDS * (number + 1) / (BUILDS + 1)
                           - time.monotonic()))
            which = "variant" if number % 2 == 0 else "base"
            result = build(seeds[which], index_dir, wait_seconds=10)
            versions[result.manifest["version"]] = which
            built.append(f"{which} {result.manifest['version']}")
        time.sleep(max(0.0, LOAD_SECONDS - (time.monotonic() - started)))
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=15)
    assert not any(thread.is_alive() for thread in threads)

    assert not failures, f"{len(failures)} failed requests of {sum(seen.values())}: " \
                         f"{failures[:5]}"
    assert min(seen.values()) >= 20 and len(seen) == 3, seen  # the load was real
    variant_version = next(v for v, which in versions.items() if which == "variant")
    answered = Counter(version for version, _ in search_answers)
    print(f"requests {dict(seen)} in {time.monotonic() - started:.1f}s; answers per version "
          f"{dict(answered)}; builds {built}")
    assert set(answered) <= set(versions), (answered, versions)
    assert variant_version in answered and len(answered) >= 2, \
        "the server switched generations while under load"
    for version, has_variant in search_answers:
        if has_variant is not None:
            # One answer, one generation: the variant's article only in its version's answers.
            assert has_variant == (version == variant_version), (version, versions)
    assert server.alive()
    server_serves(server, result.manifest["version"])
    assert "Traceback" not in server.log()
