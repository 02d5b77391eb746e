"""How common a word is in English, from the maintained `wordfreq` word list, for each index
generation: which words are real (never "corrected") and which are everyday words.

wordfreq's English list costs a process about 37 MB once loaded; each worker would pay it. So
the build writes the list into the generation as one file (`english.bin`), which workers
memory-map and share: words sorted by their UTF-8 bytes, each with its Zipf frequency
(log10 of occurrences per billion words: 7 for "the", 3 for "fibromyalgia", 0 unknown).

Layout: b"ENGW", count (uint32), blob length (uint32), 4 reserved bytes; then count + 1 word
offsets into the blob (uint32), count frequencies in hundredths (uint16), the blob.
"""

from __future__ import annotations

import bisect
import functools
import mmap
import struct
from pathlib import Path

import numpy as np

FILE = "english.bin"
_MAGIC = b"ENGW"
_HEADER = struct.Struct("<4sII4x")


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
    words = sorted((w.encode("utf-8"), f) for w, f in frequencies.items() if f > 0)
    blob = b"".join(encoded for encoded, _ in words)
    offsets = np.zeros(len(words) + 1, dtype="<u4")
    np.cumsum([len(encoded) for encoded, _ in words], out=offsets[1:])
    # Zipf = log10(frequency per billion words), in hundredths, as wordfreq's zipf_frequency.
    zipf = np.round((np.log10([f for _, f in words]) + 9) * 100).clip(0, 65535).astype("<u2")
    header = _HEADER.pack(_MAGIC, len(words), len(blob))
    return header + offsets.tobytes() + zipf.tobytes() + blob, len(words)


class _Words:
    """The sorted words as a sequence of bytes, for bisect."""

    def __init__(self, blob: memoryview, offsets: np.ndarray):
        self._blob, self._offsets = blob, offsets

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, i: int) -> bytes:
        return bytes(self._blob[int(self._offsets[i]):int(self._offsets[i + 1])])


class EnglishWords:
    """Zipf frequencies of English words, memory-mapped from a generation's english.bin."""

    def __init__(self, path: Path):
        with open(path, "rb") as f:
            self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        magic, count, blob_length = _HEADER.unpack_from(self._map)
        at = _HEADER.size
        if magic != _MAGIC or len(self._map) != at + 4 * (count + 1) + 2 * count + blob_length:
            raise ValueError(f"{path.name} is not an English word list of the expected size")
        offsets = np.frombuffer(self._map, dtype="<u4", count=count + 1, offset=at)
        self._zipf = np.frombuffer(self._map, dtype="<u2", count=count,
                                   offset=at + 4 * (count + 1))
        blob_at = at + 4 * (count + 1) + 2 * count
        if offsets[-1] != blob_length:
            raise ValueError(f"{path.name}: word offsets do not match the words")
        self._words = _Words(memoryview(self._map)[blob_at:], offsets)

    def zipf(self, word: str) -> float:
        """The word's Zipf frequency (lower case; 0.0 for a word English does not use)."""
        key = word.lower().encode("utf-8")
        i = bisect.bisect_left(self._words, key)
        if i < len(self._words) and self._words[i] == key:
            return int(self._zipf[i]) / 100
        return 0.0
