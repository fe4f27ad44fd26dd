"""Reading AIRR Rearrangement TSV files (plain or gzip): header roles and Arrow record batches.

One reader per input format: another format (an immunoSEQ or MiXCR export) gets a module of its
own that yields the same record batches of string columns and the same column roles.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
from isal import isal_zlib

from deeprc.errors import InputError
from deeprc.ingest.quote import quoted_all, shown_path

__all__ = [
    "BLOCK_SIZE",
    "REARRANGEMENT_SUFFIXES",
    "BlockTooSmall",
    "Source",
    "batches",
    "column_roles",
    "longest_line",
    "read_header",
]

REARRANGEMENT_SUFFIXES = (".tsv", ".tsv.gz", ".tsv.gzip", ".txt", ".txt.gz")
BLOCK_SIZE = 1 << 22  # bytes the CSV reader parses at a time


class Source(io.RawIOBase):
    """A file's text, gunzipped when it starts with the gzip magic bytes; hashes the raw bytes.

    Decompressing with ISA-L's zlib-compatible object in large chunks is ~1.5x faster here than
    a gzip file object, and hashing on the way saves a second read of the file. Handles
    multi-member gzip (bgzip) and reports a truncated stream as EOFError.
    """

    _CHUNK = 1 << 20

    def __init__(self, path: Path) -> None:
        try:
            self._fh = path.open("rb")
        except OSError as exc:  # no permission, a directory, gone since the metadata was read
            raise _unreadable(path, exc) from None
        self.sha256 = hashlib.sha256()
        try:
            self._gzip = self._fh.read(2) == b"\x1f\x8b"
            self._fh.seek(0)
        except OSError as exc:
            self._fh.close()
            raise _unreadable(path, exc) from None
        self._inflate = isal_zlib.decompressobj(31) if self._gzip else None
        self._pending = b""

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        if hasattr(self, "_fh"):  # not when the open failed: close runs on collection too
            self._fh.close()
        super().close()

    def _raw(self, n: int) -> bytes:
        chunk = self._fh.read(n)
        self.sha256.update(chunk)
        return chunk

    def readinto(self, buffer: memoryview) -> int:
        data = self._read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _read(self, n: int) -> bytes:
        if self._inflate is None:
            return self._raw(n)
        while True:
            if self._inflate.eof:
                rest = self._inflate.unused_data
                while len(rest) < 2 and (more := self._raw(self._CHUNK)):
                    rest += more
                if not rest.strip(b"\0"):
                    return b""
                if rest[:2] != b"\x1f\x8b":
                    raise EOFError("unexpected bytes after the end of the gzip stream")
                self._inflate = isal_zlib.decompressobj(31)
                self._pending = rest
            if not self._pending:
                self._pending = self._raw(self._CHUNK)
                if not self._pending:
                    raise EOFError("the gzip stream ended before its end-of-stream marker")
            data = self._inflate.decompress(self._pending, n)
            self._pending = self._inflate.unconsumed_tail
            if data:
                return data


def read_header(path: Path) -> list[str]:
    """The header's column names; a file with old Mac (CR-only) line ends is refused, as Arrow
    reads a CR as a line end but a header read up to the first LF would hold every line."""
    with _open_text(path) as fh:
        try:
            raw = fh.readline(1 << 20)  # a CR-only file has one line: not all of it at once
            if b"\r" in raw.rstrip(b"\r\n"):
                raise InputError(
                    f"{shown_path(path)}: line 1 (header) holds a carriage return (CR) before "
                    "its end: the file has old Mac (CR-only) line ends; convert them to LF, e.g. "
                    "tr '\\r' '\\n' < old.tsv > new.tsv"
                )
            if not raw.endswith(b"\n"):
                raw += fh.readline()
        except (EOFError, OSError, isal_zlib.error) as exc:
            raise _read_failed(path, exc) from None
    try:
        header = raw.decode("utf-8-sig").rstrip("\r\n").split("\t")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{shown_path(path)}: line 1 (header) has a byte that is not UTF-8 at position "
            f"{exc.start}; re-save the file as UTF-8"
        ) from None
    if header == [""]:
        raise InputError(
            f"{shown_path(path)}: the file is empty; an AIRR file starts with a header line"
        )
    return header


def _unreadable(path: Path, exc: OSError) -> InputError:
    """A file the system would not open or read, by the system's reason."""
    return InputError(
        f"{shown_path(path)}: cannot be read ({exc.strerror or exc}); check that it is a "
        "readable file (its permissions, the disk), or fix its row in the metadata"
    )


def _read_failed(path: Path, exc: BaseException) -> InputError:
    """A read that failed: the system's error as such, anything else as a corrupt gzip stream."""
    if isinstance(exc, OSError):
        return _unreadable(path, exc)
    return InputError(
        f"{shown_path(path)}: the gzip stream is truncated or corrupt "
        f"({type(exc).__name__}: {exc}); re-download or re-compress the file"
    )


def _diagnose(path: Path, n_fields: int, cause: BaseException) -> InputError:
    """Find the first line that Arrow's parser refused, so the error can name it."""
    try:
        with _open_text(path) as fh:
            for line_no, raw in enumerate(fh, 1):
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    return InputError(
                        f"{shown_path(path)}: line {line_no} has a byte that is not UTF-8 "
                        f"(0x{raw[exc.start]:02x} at position {exc.start}); re-save the file "
                        "as UTF-8, e.g. iconv -f latin1 -t utf-8"
                    )
                if b"\r" in raw.rstrip(b"\r\n"):
                    return InputError(
                        f"{shown_path(path)}: line {line_no} holds a carriage return (CR) "
                        "before its end, which ends a line for the reader; remove it"
                    )
                found = raw.rstrip(b"\r\n").count(b"\t") + 1
                if found != n_fields:
                    return InputError(
                        f"{shown_path(path)}: line {line_no} has {found} tab-separated "
                        f"field(s) but the header has {n_fields}; fix or remove that line"
                    )
    except (EOFError, OSError, isal_zlib.error) as exc:
        return _read_failed(path, exc)
    except InputError as exc:  # it could be opened a moment ago
        return exc
    return InputError(f"{shown_path(path)}: could not be parsed: {cause}")


def column_roles(header: list[str], path: Path) -> dict[str, str | None]:
    """Which header column plays which role; an error names what is missing and the fix."""
    present = set(header)
    junction = next((c for c in ("junction_aa", "cdr3_aa") if c in present), None)
    if junction is None:
        raise InputError(
            f"{shown_path(path)}: no junction_aa (or cdr3_aa) column; the header has "
            f"{quoted_all(header[:20])}. Name the column holding the junction amino-acid "
            "sequence junction_aa."
        )
    for required in ("v_call", "j_call"):
        if required not in present:
            raise InputError(
                f"{shown_path(path)}: required AIRR column {required!r} is missing; the header has "
                f"{quoted_all(header[:20])}. Add it (an empty value is allowed)."
            )
    roles = {
        "junction": junction,
        "v_call": "v_call",
        "j_call": "j_call",
        "productive": "productive" if "productive" in present else None,
        "locus": "locus" if "locus" in present else None,
        "duplicate_count": "duplicate_count" if "duplicate_count" in present else None,
        "sequence_id": "sequence_id" if "sequence_id" in present else None,
    }
    for column in filter(None, roles.values()):
        if header.count(column) > 1:
            raise InputError(
                f"{shown_path(path)}: column {column!r} appears more than once in the header"
            )
    return roles


def _open_text(path: Path) -> io.BufferedReader:
    return io.BufferedReader(Source(path), buffer_size=1 << 20)


class BlockTooSmall(InputError):
    """A line longer than the CSV reader's block: ``_ingest_file`` retries with a larger one."""


def batches(
    stream: io.BufferedReader, path: Path, header: list[str], columns: list[str], block_size: int
) -> Iterator[pa.RecordBatch]:
    """Record batches of the wanted columns, all as strings; errors name the line at fault."""
    try:
        reader = pcsv.open_csv(
            stream,
            read_options=pcsv.ReadOptions(block_size=block_size, use_threads=False),
            parse_options=pcsv.ParseOptions(
                delimiter="\t", quote_char=False, ignore_empty_lines=False
            ),
            convert_options=pcsv.ConvertOptions(
                include_columns=columns,
                column_types=dict.fromkeys(columns, pa.string()),
                strings_can_be_null=True,
            ),
        )
        yield from reader
    except (EOFError, isal_zlib.error) as exc:
        raise _read_failed(path, exc) from None
    except (pa.ArrowInvalid, OSError) as exc:
        if isinstance(exc, OSError) and not isinstance(exc, pa.ArrowException):
            raise _read_failed(path, exc) from None
        if "straddles two block boundaries" in str(exc):
            raise BlockTooSmall(
                f"{shown_path(path)}: a line is longer than {block_size} bytes, the most deeprc "
                "reads; shorten or remove it"
            ) from None
        raise _diagnose(path, len(header), exc) from None


def longest_line(path: Path) -> int:
    """Bytes in the file's longest line, streamed line by line (files may exceed memory)."""
    try:
        with _open_text(path) as fh:
            return max(map(len, fh), default=0)
    except (EOFError, OSError, isal_zlib.error) as exc:
        raise _read_failed(path, exc) from None
