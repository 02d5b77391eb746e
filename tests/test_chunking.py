"""Chunking: how an article becomes paragraph snippets, each an exact span of the article."""

from __future__ import annotations

import hashlib
from pathlib import Path

from index import store
from index.build import current_generation
from index.chunking import chunk

SNIPPETS_PER_SEED = {"000": 8, "001": 13, "002": 9, "003": 7, "004": 8}
BLANK_LINE_PARAGRAPH_SEEDS = ("000", "003", "004")
SINGLE_NEWLINE_PARAGRAPH_SEEDS = ("001", "002")

# Seed 001: the headings and the paragraph numbers of the snippets under each.
SECTIONS_OF_001 = {
    None: [1, 2],
    "How Vagus Nerve Stimulation Works": [3, 4],
    "Benefits of VNS for Chronic Pain Management": [5, 6, 7, 8],
    "Patient Experiences and Clinical Studies": [9, 10],
    "Considerations and Future Directions": [11, 12, 13],
}
LEAD_IN_OF_001 = (
    "Vagus Nerve Stimulation presents several benefits for individuals suffering from chronic "
    "pain:"
)
LABELLED_BULLETS_OF_001 = {
    5: "Reduction in Pain Levels: ",
    6: "Improved Mood: ",
    7: "Minimal Side Effects: ",
    8: "Non-Invasive Option: ",
}


def article_text(path: Path) -> str:
    """The article exactly as the pipeline reads it (bytes decoded, newlines untouched)."""
    return Path(path).read_bytes().decode("utf-8")


def seed_prefix(source_id: str) -> str:
    return source_id.split("_", 1)[0]




def snippets_of(seed_snippets: list[dict], prefix: str) -> list[dict]:
    return [s for s in seed_snippets if seed_prefix(s["source_id"]) == prefix]


# -- the real seed articles ------------------------------------------------------------------


def test_each_seed_article_gives_its_expected_number_of_snippets(seed_snippets):
    per_seed = {prefix: len(snippets_of(seed_snippets, prefix)) for prefix in SNIPPETS_PER_SEED}
    assert per_seed == SNIPPETS_PER_SEED
    assert len(seed_snippets) == 45


def test_seeds_use_both_paragraph_styles(seeds):
    texts = {seed_prefix(s.id): s.text for s in seeds.sources}
    for prefix in BLANK_LINE_PARAGRAPH_SEEDS:
        assert "\n\n" in texts[prefix], prefix
    for prefix in SINGLE_NEWLINE_PARAGRAPH_SEEDS:
        assert "\n\n" not in texts[prefix], prefix


def test_every_seed_snippet_is_one_trimmed_line(seed_snippets):
    # In both paragraph styles no two paragraphs are merged and no blank space is kept.
    for snippet in seed_snippets:
        assert "\n" not in snippet["text"], snippet["id"]
        assert snippet["text"] == snippet["text"].strip(), snippet["id"]


def test_first_line_of_each_seed_is_its_title_and_not_a_snippet(seeds, seed_snippets):
    for source in seeds.sources:
        first_line = source.text.splitlines()[0]
        title, chunks = chunk(source.text)
        assert title == first_line == source.title
        assert all(piece.start > len(first_line) for piece in chunks), source.id
        assert first_line not in {s["text"] for s in seed_snippets}


def test_headings_of_001_are_sections_not_snippets(seed_snippets):
    snippets = snippets_of(seed_snippets, "001")
    texts = {s["text"] for s in snippets}
    sections = {s["paragraph"]: s["section"] for s in snippets}
    for heading, paragraphs in SECTIONS_OF_001.items():
        assert heading not in texts
        for paragraph in paragraphs:
            assert sections[paragraph] == heading, paragraph
    assert sorted(sections) == list(range(1, 14))


def test_lead_in_of_001_is_context_of_its_labelled_bullets_not_a_snippet(seed_snippets):
    snippets = snippets_of(seed_snippets, "001")
    assert LEAD_IN_OF_001 not in {s["text"] for s in snippets}
    assert all(LEAD_IN_OF_001 not in s["text"] for s in snippets)
    for snippet in snippets:
        if snippet["paragraph"] in LABELLED_BULLETS_OF_001:
            assert snippet["lead_in"] == LEAD_IN_OF_001
            assert snippet["text"].startswith(LABELLED_BULLETS_OF_001[snippet["paragraph"]])
            assert not snippet["text"].startswith(("-", " "))
        else:
            assert snippet["lead_in"] is None, snippet["paragraph"]


def test_snippets_outside_001_have_no_section_and_no_lead_in(seed_snippets):
    for snippet in seed_snippets:
        if seed_prefix(snippet["source_id"]) != "001":
            assert snippet["section"] is None, snippet["id"]
            assert snippet["lead_in"] is None, snippet["id"]


def test_every_seed_snippet_is_the_exact_span_of_its_article(seeds, seed_snippets):
    texts = {s.id: s.text for s in seeds.sources}
    for snippet in seed_snippets:
        source_text = texts[snippet["source_id"]]
        assert source_text[snippet["char_start"]:snippet["char_end"]] == snippet["text"]
        expected_hash = hashlib.sha256(snippet["text"].encode("utf-8")).hexdigest()
        assert snippet["text_sha256"] == expected_hash


def test_snippets_stored_in_built_index_match_the_article_files(built_index, seeds_dir,
                                                                seed_snippets):
    expected = {s["id"]: s for s in seed_snippets}
    articles: dict[str, str] = {}
    ix = store.open_whoosh(current_generation(built_index))
    try:
        with ix.searcher() as searcher:
            stored = [store.from_stored(fields) for fields in searcher.all_stored_fields()]
    finally:
        ix.close()
    assert sorted(r["id"] for r in stored) == sorted(expected)
    for record in stored:
        source_id = record["source_id"]
        if source_id not in articles:
            articles[source_id] = article_text(seeds_dir / f"{source_id}.txt")
        text = articles[source_id][record["char_start"]:record["char_end"]]
        assert text == record["text"], record["id"]
        assert record["text_sha256"] == hashlib.sha256(text.encode("utf-8")).hexdigest()
        want = expected[record["id"]]
        for name in ("paragraph", "section", "lead_in", "conditions", "caveats",
                     "reading_grade"):
            assert record.get(name) == want[name], (record["id"], name)


# -- chunk() on small texts --------------------------------------------------------------------


def spans_are_exact(source: str, chunks) -> bool:
    return all(source[c.start:c.end] == c.text for c in chunks)


def test_crlf_blank_line_paragraphs():
    source = "Title\r\n\r\nFirst paragraph here.\r\n\r\nSecond paragraph here.\r\n"
    title, chunks = chunk(source)
    assert title == "Title"
    assert [c.text for c in chunks] == ["First paragraph here.", "Second paragraph here."]
    assert spans_are_exact(source, chunks)


def test_crlf_single_newline_paragraphs_with_heading():
    source = "Title\r\nFirst paragraph here.\r\nA Heading\r\nSecond paragraph here.\r\n"
    title, chunks = chunk(source)
    assert title == "Title"
    assert [(c.text, c.section) for c in chunks] == [
        ("First paragraph here.", None),
        ("Second paragraph here.", "A Heading"),
    ]
    assert spans_are_exact(source, chunks)


def test_leading_indentation_is_not_part_of_the_snippet():
    source = "Title\n   Indented paragraph text here.\n\t- Label: indented bullet text.\n"
    _, chunks = chunk(source)
    assert [c.text for c in chunks] == ["Indented paragraph text here.",
                                        "Label: indented bullet text."]
    assert chunks[0].start == source.index("Indented")
    assert chunks[1].start == source.index("Label")
    assert spans_are_exact(source, chunks)


def test_lead_in_with_plain_bullets_is_one_snippet_from_lead_in_to_last_bullet():
    source = "Title\nYou may notice:\n- fever\n- chills\n- tiredness\nAfter that, rest.\n"
    _, chunks = chunk(source)
    assert [c.text for c in chunks] == [
        "You may notice:\n- fever\n- chills\n- tiredness",
        "After that, rest.",
    ]
    assert chunks[0].lead_in is None
    assert spans_are_exact(source, chunks)


def test_lead_in_with_labelled_bullets_gives_one_snippet_per_bullet():
    source = "Title\nThere are two kinds:\n- Kind one: first text.\n- Kind two: second text.\n"
    _, chunks = chunk(source)
    assert [(c.text, c.lead_in) for c in chunks] == [
        ("Kind one: first text.", "There are two kinds:"),
        ("Kind two: second text.", "There are two kinds:"),
    ]
    assert spans_are_exact(source, chunks)


def test_lead_in_followed_by_paragraph_is_one_snippet():
    source = "Title\n\nThere is one thing to know:\n\nThe paragraph that follows it.\n\nNext one.\n"
    _, chunks = chunk(source)
    assert [c.text for c in chunks] == [
        "There is one thing to know:\n\nThe paragraph that follows it.",
        "Next one.",
    ]
    assert spans_are_exact(source, chunks)


def test_unlabelled_bullet_run_without_lead_in_is_one_snippet():
    source = "Title\n\n- fever\n- chills\n- tiredness\n\nAfter that, rest.\n"
    _, chunks = chunk(source)
    assert len(chunks) == 2
    run, after = chunks
    assert run.text.startswith("- fever")
    assert run.text.endswith("- chills\n- tiredness")
    assert after.text == "After that, rest."
    assert spans_are_exact(source, chunks)


def test_unlabelled_bullet_run_without_lead_in_shows_every_item_alike():
    source = "Title\n\n- fever\n- chills\n- tiredness\n\nAfter that, rest.\n"
    _, chunks = chunk(source)
    lines = chunks[0].text.split("\n")
    with_marker = [line.startswith("- ") for line in lines]
    assert all(with_marker) or not any(with_marker), lines


def test_medquad_style_headings_with_blank_lines_become_sections():
    source = "Title\n\nInformation\n\nParagraph one.\n\nFrequency\n\nParagraph two."
    title, chunks = chunk(source)
    assert title == "Title"
    assert [(c.text, c.section) for c in chunks] == [
        ("Paragraph one.", "Information"),
        ("Paragraph two.", "Frequency"),
    ]
    assert spans_are_exact(source, chunks)


def test_first_line_that_is_a_sentence_is_not_taken_as_title():
    source = "This starts with a sentence.\nAnd another one."
    title, chunks = chunk(source)
    assert title is None
    assert [c.text for c in chunks] == ["This starts with a sentence.", "And another one."]


def test_empty_text_has_no_title_and_no_snippets():
    assert chunk("") == (None, [])
    assert chunk("\n \n\t\n") == (None, [])
