"""Text analysis, done once per field value at build time for both the Whoosh segment and the
scoring arrays, and for query words at search time.

The analyzer is the schema's (Whoosh's StemmingAnalyzer: words, lower case, stop words dropped,
Porter stems). At build time each text is analyzed once without stemming, which gives the
unstemmed words (for spelling) with their character spans (for highlighting); each distinct
word is stemmed once through the same analyzer and remembered. Whoosh is then given the stems
as a list, which its writer indexes as they are (its documented way to bypass the analyzer), so
the segment and the arrays hold exactly the same tokens.
"""

from __future__ import annotations

import re
import unicodedata
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

from whoosh.analysis import (
    Filter,
    LowercaseFilter,
    RegexTokenizer,
    StemFilter,
    StopFilter,
)
from whoosh.analysis.filters import STOP_WORDS

# Bound prefixes written with or without a hyphen ("non-invasive", "noninvasive",
# "post-traumatic", "posttraumatic"): the hyphenated form is one token, joined. Other hyphens
# separate words ("side-effects" is "side effects", "well-being" is "well being").
HYPHENATED_PREFIXES = ("non", "anti", "post", "pre", "co", "multi", "semi", "sub", "inter",
                       "intra", "trans", "hyper", "hypo", "re", "un")
_HYPHENS = "-\u2010\u2011"  # hyphen-minus, hyphen, non-breaking hyphen
WORD_PATTERN = (rf"(?i:(?:{'|'.join(HYPHENATED_PREFIXES)})[{_HYPHENS}])*"
                r"[\w\*]+(\.?[\w\*]+)*")
_NOT_WORD = re.compile(r"[^\w*]")
# A word of a query as the analyzer will see it: a joined prefix stays with its word.
QUERY_WORD = re.compile(rf"(?i:(?:{'|'.join(HYPHENATED_PREFIXES)})[{_HYPHENS}])*\w+")


def fold(text: str) -> str:
    """One spelling for what people type several ways: compatibility forms (the ligature in
    "ﬁbromyalgia", full-width letters) as plain letters, accents dropped ("fibromyalgía"),
    hyphens of a joined prefix removed."""
    text = unicodedata.normalize("NFKC", text)
    if not text.isascii():
        text = "".join(c for c in unicodedata.normalize("NFKD", text)
                       if not unicodedata.combining(c))
        text = unicodedata.normalize("NFC", text)
    # What folding leaves outside a word ("¼" becomes "1⁄4") goes: a token stays one token.
    return _NOT_WORD.sub("", text)


class FoldFilter(Filter):
    """Folds each token's text (see fold()); spans still point at what was written."""

    def __call__(self, tokens):
        for token in tokens:
            token.text = fold(token.text) or token.text
            yield token


def make_analyzer():
    # Whoosh's StemmingAnalyzer (words, lower case, stop words, Porter stems) with folding
    # after the tokenizer. minsize=1 keeps one-character tokens: "type 5", "Noonan syndrome 3"
    # are told apart.
    return (RegexTokenizer(WORD_PATTERN) | FoldFilter() | LowercaseFilter()
            | StopFilter(stoplist=STOP_WORDS, minsize=1) | StemFilter())


@dataclass(frozen=True)
class Analyzed:
    """One field value: its tokens in order (stems and the words they came from) with spans."""

    words: list[str]
    stems: list[str]
    starts: Sequence[int]
    ends: Sequence[int]

    def pack(self) -> tuple[str, str, bytes, bytes]:
        """A form that crosses a process boundary cheaply (tokens hold no spaces)."""
        return (" ".join(self.words), " ".join(self.stems), array("i", self.starts).tobytes(),
                array("i", self.ends).tobytes())

    @classmethod
    def unpack(cls, packed: tuple[str, str, bytes, bytes]) -> Analyzed:
        words, stems, starts, ends = packed
        return cls(words.split(" ") if words else [], stems.split(" ") if stems else [],
                   array("i", starts), array("i", ends))


class Analysis:
    """The schema's analyzer with a per-word stem memo (stemming is per token, so a word's stem
    does not depend on its neighbours)."""

    def __init__(self, analyzer):
        self._analyzer = analyzer
        self._stems: dict[str, str] = {}

    def analyze(self, text: str) -> Analyzed:
        words, starts, ends = [], [], []
        # Whoosh reuses one Token object while iterating: copy what we need as we go.
        for token in self._analyzer(text, chars=True, no_morph=True, mode="index"):
            words.append(token.text)
            starts.append(token.startchar)
            ends.append(token.endchar)
        stems = [self._stem(word) for word in words]
        return Analyzed(words, stems, starts, ends)

    def _stem(self, word: str) -> str:
        stem = self._stems.get(word)
        if stem is None:
            found = [t.text for t in self._analyzer(word, mode="index")]
            # A word the tokenizer produced comes back as one token; anything else would mean
            # the analyzer is not per token, and the memo would be wrong.
            if len(found) != 1:
                raise ValueError(f"the analyzer split the word {word!r} into {found!r}")
            stem = self._stems[word] = found[0]
        return stem

    def query_stems(self, text: str) -> list[str]:
        """The stems a query's words are looked up by."""
        return [t.text for t in self._analyzer(text, mode="query")]
