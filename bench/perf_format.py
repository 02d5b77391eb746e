"""Number formatting and markdown for the benchmark's tables."""

from __future__ import annotations


def ms(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value < 1:
        return f"{value:.3f} ms"
    if value < 100:
        return f"{value:.1f} ms"
    return f"{value:,.0f} ms"


def secs(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value < 1:
        return f"{value * 1000:.0f} ms" if value >= 0.01 else f"{value * 1000:.1f} ms"
    return f"{value:.2f} s" if value < 10 else f"{value:,.1f} s"


def mb(kb_or_bytes: float | None, unit: str = "kb") -> str:
    if kb_or_bytes is None:
        return "n/a"
    value = kb_or_bytes / 1024 if unit == "kb" else kb_or_bytes / 1024 / 1024
    return f"{value:,.1f} MB"


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def times(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}×"


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.0f}%"


def verdict(ok: bool | None, note: str = "") -> str:
    text = "n/a" if ok is None else ("PASS" if ok else "FAIL")
    return f"{text} {note}".strip()


def errors_note(*counts: int) -> str:
    total = sum(counts)
    return f"({total} query errors)" if total else ""


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)
