"""How common a word is in English, from the maintained `wordfreq` word list, for each index
generation: which words are real (never "corrected") and which are everyday words.

wordfreq's English list costs a process about 37 MB once loaded; each worker would pay it. So
the build writes the list into the generation as one file (`english.bin`), which workers
memory-map and share: each word's 64-bit BLAKE2b hash, sorted, with its Zipf frequency
(log10 of occurrences per billion words: 7 for "the", 2.6 for "fibromyalgia", 0 unknown). A
lookup is one hash and one binary search in C.

Layout: b"ENGH", count (uint32), 8 reserved bytes; then count hashes (uint64, ascending) and
count frequencies in hundredths (uint16).
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import mmap
import struct
import sys
from pathlib import Path

import numpy as np

FILE = "english.bin"
if sys.byteorder != "little":  # the file is little-endian and read in native order
    raise ImportError("index/english.py reads its word list in little-endian order only")
_MAGIC = b"ENGH"
_HEADER = struct.Struct("<4sI8x")


def _hash(word: str) -> int:
    return int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest(), "little")


def write(path: Path) -> int:
    """Write wordfreq's English list to `path`; the number of words."""
    data, count = _encoded()
    path.write_bytes(data)
    return count


@functools.cache
def _encoded() -> tuple[bytes, int]:
    """The file's bytes (the same for every build in a process)."""
    import wordfreq  # only the build needs the package itself

    frequencies = wordfreq.get_frequency_dict("en", "large")
    pairs = sorted((_hash(w), f) for w, f in frequencies.items() if f > 0)
    hashes = np.array([h for h, _ in pairs], dtype="<u8")
    if len(np.unique(hashes)) != len(hashes):
        raise ValueError("two English words share a 64-bit hash")  # never seen; checked anyway
    # Zipf = log10(frequency per billion words), in hundredths, as wordfreq's zipf_frequency.
    zipf = np.round((np.log10([f for _, f in pairs]) + 9) * 100).clip(0, 65535).astype("<u2")
    return _HEADER.pack(_MAGIC, len(pairs)) + hashes.tobytes() + zipf.tobytes(), len(pairs)


class EnglishWords:
    """Zipf frequencies of English words, memory-mapped from a generation's english.bin."""

    def __init__(self, path: Path):
        with open(path, "rb") as f:
            self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        magic, count = _HEADER.unpack_from(self._map)
        if magic != _MAGIC or len(self._map) != _HEADER.size + 10 * count:
            raise ValueError(f"{path.name} is not an English word list of the expected size")
        # Native-order views: bisect over a memoryview runs in C without numpy's per-call cost.
        view = memoryview(self._map)
        self._hashes = view[_HEADER.size:_HEADER.size + 8 * count].cast("Q")
        self._zipf = view[_HEADER.size + 8 * count:].cast("H")

    def zipf(self, word: str) -> float:
        """The word's Zipf frequency (lower case; 0.0 for a word English does not use)."""
        key = _hash(word.lower())
        i = bisect.bisect_left(self._hashes, key)
        if i < len(self._hashes) and self._hashes[i] == key:
            return self._zipf[i] / 100
        return 0.0
