"""Which encoding a text file is in, and a UTF-8 view of it for the CSV parser.

Agencies' exports come as UTF-8, UTF-8 with a BOM (Excel's "CSV UTF-8"), GBK from older Windows
tools and UTF-16 from "Unicode text". GBK, GB2312 and CP936 are all decoded as GB18030, their
superset, so rare characters (䶮, 𠀀) in names survive. Detection looks at a sample only; a byte
further on that does not decode stops the read with the line it is on.
"""

from __future__ import annotations

import codecs
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from charset_normalizer import from_bytes

from pubdata.errors import InputError
from pubdata.messages import text as sentence

#: Bytes examined to choose an encoding and delimiter and to find the header.
SAMPLE_BYTES = 1 << 17
#: Bytes of a non-UTF-8 file decoded at a time.
DECODE_BYTES = 1 << 16

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_GB_FAMILY = frozenset({"gbk", "gb2312", "gb18030", "cp936", "hz", "euc_cn", "ms936"})


def read_sample(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(SAMPLE_BYTES)


def detect_encoding(sample: bytes, *, file: str) -> str:
    """Name a Python codec for `sample`: a BOM wins, then strict UTF-8, then charset-normalizer."""
    for bom, name in _BOMS:
        if sample.startswith(bom):
            return name
    complete = _whole_lines(sample)
    try:
        codecs.getincrementaldecoder("utf-8")().decode(complete, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    if b"\x00" in complete:
        raise InputError(sentence("binary content: this is not a text file"), file=file)
    if _reads_as_chinese(complete):
        return "gb18030"
    best = from_bytes(complete).best()
    if best is None:
        raise InputError(
            sentence("the text encoding cannot be recognised; save the file as UTF-8"), file=file
        )
    name = codecs.lookup(best.encoding).name.replace("-", "_")
    return "gb18030" if name in _GB_FAMILY else best.encoding


def decode_sample(sample: bytes, encoding: str, *, file: str) -> str:
    """Decode the complete lines of a sample, for sniffing the delimiter and the header."""
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        text = decoder.decode(sample, final=False)
    except UnicodeDecodeError as exc:
        raise InputError(
            sentence("not valid {encoding} near byte {offset}", encoding=encoding, offset=exc.start),
            file=file,
        ) from exc
    if len(sample) < SAMPLE_BYTES:
        return text
    cut = text.rfind("\n")
    return text[: cut + 1] if cut >= 0 else text


class Utf8Stream:
    """A binary file object that hands the CSV parser UTF-8, whatever the file is in.

    UTF-8 files pass through undecoded: the parser checks UTF-8 itself, natively and on its own
    threads, and `invalid_utf8` turns its (rare) failure into an error with a location. Other
    encodings are decoded here. The stream also counts double quotes: an odd count at the end means
    the file stops inside a quoted field (a truncated last line), which the parser accepts silently.
    """

    closed = False

    def __init__(self, path: Path, encoding: str) -> None:
        self._file: BinaryIO = path.open("rb")
        self._decoder = codecs.getincrementaldecoder(encoding)()
        self._path = path
        self._name = path.name
        self._encoding = encoding
        self.passthrough = codecs.lookup(encoding).name in {"utf-8", "utf-8-sig"}
        self._bom = codecs.lookup(encoding).name == "utf-8-sig"
        self.bytes_read = 0
        self.lines = 0
        self.quotes = 0
        self._done = False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        # Decoded text comes in small pieces: multi-MB strings made and freed on the parser's
        # threads left the process's memory growing with the file.
        step = min(size, DECODE_BYTES) if size and size > 0 and not self.passthrough else size
        data = b""
        while not data and not self._done:
            data = self._next(step if step and step > 0 else 1 << 20)
        return data

    def _next(self, size: int) -> bytes:
        raw = self._file.read(size)
        final = not raw
        if self.passthrough:
            data = raw
            if self._bom and self.bytes_read == 0 and data.startswith(codecs.BOM_UTF8):
                data = data[len(codecs.BOM_UTF8) :]
        else:
            try:
                text = self._decoder.decode(raw, final=final)
            except UnicodeDecodeError as exc:
                line = self.lines + 1 + raw[: exc.start].decode(self._encoding, "replace").count("\n")
                raise self._not_valid(self.bytes_read + exc.start, line) from exc
            data = text.encode("utf-8")
            self.lines += data.count(b"\n")
        self.bytes_read += len(raw)
        self._done = final
        self.quotes += data.count(b'"')
        return data

    def invalid_utf8(self) -> InputError | None:
        """Where a passed-through file stops being UTF-8 (error path: the file is read again)."""
        decoder = codecs.getincrementaldecoder(self._encoding)()
        offset = lines = 0
        with self._path.open("rb") as handle:
            while True:
                raw = handle.read(1 << 20)
                try:
                    decoder.decode(raw, final=not raw)
                except UnicodeDecodeError as exc:
                    line = lines + 1 + raw[: exc.start].count(b"\n")
                    return self._not_valid(offset + exc.start, line)
                if not raw:
                    return None
                offset += len(raw)
                lines += raw.count(b"\n")

    def _not_valid(self, offset: int, line: int) -> InputError:
        return InputError(
            sentence(
                "not valid {encoding} at byte {offset} (line {line})",
                encoding=self._encoding,
                offset=offset,
                line=line,
            ),
            file=self._name,
        )

    def close(self) -> None:
        self._file.close()
        self.closed = True

    def __enter__(self) -> Utf8Stream:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _reads_as_chinese(sample: bytes) -> bool:
    """GB18030 decodes most byte soup; accept it only when the result is mostly Chinese text.

    charset-normalizer alone guesses UTF-16 or Korean for short GBK samples, so the encoding most
    agencies' older tools write is tried first.
    """
    try:
        text = sample.decode("gb18030")
    except UnicodeDecodeError:
        return False
    wide = [ch for ch in text if ord(ch) > 0x7F]
    chinese = sum(_is_chinese_text(ord(ch)) for ch in wide)
    return bool(wide) and chinese >= 0.9 * len(wide)


def _is_chinese_text(code: int) -> bool:
    """Han characters, CJK and full-width punctuation, and the symbols GB2312 carries (①, ×, §)."""
    return (
        0x3000 <= code <= 0x9FFF
        or 0xFF00 <= code <= 0xFFEF
        or code >= 0x20000
        or 0x2000 <= code <= 0x2BFF
        or code in _GB_SYMBOLS
    )


_GB_SYMBOLS = frozenset(map(ord, "§°±×÷¤¨·"))


def _whole_lines(sample: bytes) -> bytes:
    if len(sample) < SAMPLE_BYTES:
        return sample
    cut = sample.rfind(b"\n")
    return sample[: cut + 1] if cut > 0 else sample
