"""Reading documents: formats, cleaning, and bad input with clear errors."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest

from codi_agents import load_document
from codi_agents.errors import DocumentError
from codi_agents.inputs._documents import text_document


def minimal_pdf(text: str, *, compress: bool = False) -> bytes:
    """A one-page PDF showing `text`, written by hand so the tests need no PDF writer.

    `compress` deflates the page's content stream, as real PDFs do: the file is then far smaller than its text."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    deflate = b""
    if compress:
        stream, deflate = zlib.compress(stream, 9), b" /Filter /FlateDecode"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + deflate + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def test_markdown_file_gets_id_title_and_clean_text(tmp_path: Path) -> None:
    path = tmp_path / "benefits.md"
    path.write_text("# Benefits\n\n\n\nYou   can apply   online.\r\nIt takes 10 days.\n")
    document = load_document(path)
    assert document.id == "benefits"
    assert document.title == "Benefits"
    assert document.text == "# Benefits\n\nYou can apply online.\nIt takes 10 days."
    assert document.source == str(path)


def test_html_is_converted_with_a_parser_and_scripts_dropped(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(
        "<html><head><title>Plates</title><style>p{color:red}</style></head><body><nav>Home | Menu</nav>"
        "<h1>Surrender plates</h1><p>Return your plates &amp; keep the receipt.</p><script>alert(1)</script></body></html>"
    )
    document = load_document(path)
    assert document.title == "Plates"
    assert "Return your plates & keep the receipt." in document.text
    assert "alert" not in document.text and "color" not in document.text and "Menu" not in document.text


def test_pdf_text_is_extracted(tmp_path: Path) -> None:
    path = tmp_path / "form.pdf"
    path.write_bytes(minimal_pdf("Submit the form within 10 days."))
    document = load_document(path)
    assert "Submit the form within 10 days." in document.text
    assert document.metadata["format"] == "pdf"


def test_a_small_pdf_whose_text_expands_past_the_limit_is_cut_or_refused(tmp_path: Path) -> None:
    path = tmp_path / "bomb.pdf"
    path.write_bytes(minimal_pdf("Renew the permit every year. " * 400, compress=True))
    assert path.stat().st_size < 2_000  # the file is under the limit; its text is not
    cut = load_document(path, max_bytes=2_000)
    assert 1_000 < len(cut.text.encode()) <= 2_000
    assert cut.metadata["truncated_at_bytes"] == 2_000
    with pytest.raises(DocumentError, match=r"text of .*bomb\.pdf runs over the limit of 2,000 bytes"):
        load_document(path, max_bytes=2_000, oversize="skip")


def test_corrupt_pdf_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.pdf"
    path.write_bytes(b"%PDF-1.4\nthis is not really a pdf")
    with pytest.raises(DocumentError, match=r"Cannot read PDF .*broken\.pdf"):
        load_document(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"   \n\n\t  ", "no text after cleaning"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "looks binary"),
    ],
)
def test_empty_blank_and_binary_files_are_refused(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "doc.txt"
    path.write_bytes(content)
    with pytest.raises(DocumentError, match=message):
        load_document(path)


def test_missing_file_and_folder_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match="not found"):
        load_document(str(tmp_path / "missing.md"))
    with pytest.raises(DocumentError, match="not found"):
        load_document("docs/benefits.md")
    with pytest.raises(DocumentError, match="Not a regular file"):
        load_document(tmp_path)


def test_raw_text_is_a_document_and_empty_text_is_refused() -> None:
    document = load_document("The office opens at 9 am.\nIt closes at 5 pm.")
    assert document.id.startswith("text-")
    assert document.text.startswith("The office opens")
    assert document.id == text_document("The office opens at 9 am.\nIt closes at 5 pm.").id
    with pytest.raises(DocumentError, match="empty"):
        text_document("   \n ")


def test_invalid_utf8_is_replaced_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes("Café opens at 9. Déjà vu.".encode("latin-1"))
    document = load_document(path)
    assert "\ufffd" in document.text
    assert document.metadata["decoding_errors"] == 3


def test_oversized_file_is_truncated_or_skipped_as_configured(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_text("word " * 1000)
    truncated = load_document(path, max_bytes=100)
    assert len(truncated.text) <= 100
    assert truncated.metadata["truncated_at_bytes"] == 100
    with pytest.raises(DocumentError, match="too large"):
        load_document(path, max_bytes=100, oversize="skip")
