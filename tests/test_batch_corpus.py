"""Reading a corpus: JSONL (both shapes), folders of mixed files, globs; bad files skipped and named, never fatal."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from test_documents import minimal_pdf

from codi_agents import Document
from codi_agents.corpora._eager import read_corpus
from codi_agents.errors import DocumentError

DATA = Path(__file__).parent / "data"
LIMIT = 100_000


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))
    return path


def test_jsonl_with_id_and_with_doc_id_shapes() -> None:
    corpus = read_corpus(DATA / "doc2dial_docs.jsonl", max_bytes=LIMIT)
    assert len(corpus.documents) == 5 and not corpus.skipped
    assert corpus.documents[0].id == "Top 5 DMV Mistakes and How to Avoid Them#3_0"
    assert corpus.documents[0].title == "Top 5 DMV Mistakes and How to Avoid Them"


def test_doc2dial_shape_and_exact_duplicates_kept_once(tmp_path: Path) -> None:
    text = "You must renew your registration every two years. Fees depend on the vehicle weight."
    path = write_jsonl(
        tmp_path / "docs.jsonl",
        [
            {"source": "doc2dial_val", "doc_id": "a", "title": "A", "text": text},
            {"source": "doc2dial_val", "doc_id": "b", "title": "B", "text": text},
            {"doc_id": "c", "title": "C", "text": "Something else entirely, about boats and harbours."},
        ],
    )
    corpus = read_corpus(path, max_bytes=LIMIT)
    assert [document.id for document in corpus.documents] == ["a", "c"]
    assert corpus.duplicates == {"b": "a"}


def test_bad_jsonl_records_are_skipped_with_their_line(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "docs.jsonl",
        [
            {"id": "good", "title": "Good", "text": "A fine document about tax returns and deadlines."},
            "{not json",
            {"id": "no-text", "title": "Nothing"},
            {"id": "empty", "text": "   \n\t "},
            {"id": "good", "text": "Another text with the same id, which is not allowed."},
            ["a", "list"],
        ],
    )
    corpus = read_corpus(path, max_bytes=LIMIT)
    assert [document.id for document in corpus.documents] == ["good"]
    reasons = {item.source.rsplit(":", 1)[1]: item.reason for item in corpus.skipped}
    assert "not valid JSON" in reasons["2"]
    assert "`text`" in reasons["3"] and "`text`" in reasons["6"]
    assert "empty" in reasons["4"]
    assert "duplicate id 'good'" in reasons["5"]


def test_oversized_records_are_cut_or_skipped_as_configured(tmp_path: Path) -> None:
    long_text = "word " * 2000
    path = write_jsonl(
        tmp_path / "docs.jsonl", [{"id": "long", "text": long_text}, {"id": "short", "text": "Hi there."}]
    )
    cut = read_corpus(path, max_bytes=1000, oversize="truncate")
    assert len(cut.documents[0].text) <= 1000 and cut.documents[0].metadata["truncated_at_bytes"] == 1000
    skipped = read_corpus(path, max_bytes=1000, oversize="skip")
    assert [document.id for document in skipped.documents] == ["short"]
    assert "over the limit of 1,000" in skipped.skipped[0].reason
    huge = write_jsonl(tmp_path / "huge.jsonl", [{"id": "huge", "text": "x" * 100_000}, {"id": "ok", "text": "Fine."}])
    unread = read_corpus(huge, max_bytes=1000)
    assert [document.id for document in unread.documents] == ["ok"]
    assert "larger than the limit" in unread.skipped[0].reason


def test_invalid_utf8_in_jsonl_is_replaced_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_bytes(b'{"id": "latin", "text": "caf\xe9 au lait is served until noon."}\n')
    document = read_corpus(path, max_bytes=LIMIT).documents[0]
    assert "\ufffd" in document.text and document.metadata["decoding_errors"] == 1


def test_folder_of_mixed_files_reads_text_html_pdf_and_skips_the_rest(tmp_path: Path) -> None:
    folder = tmp_path / "corpus"
    (folder / "sub").mkdir(parents=True)
    (folder / "notes.txt").write_text("Library cards are free for residents. Bring proof of address.")
    (folder / "guide.md").write_text("# Parking\n\nPermits cost 40 dollars a year.")
    (folder / "page.html").write_text(
        "<html><head><title>Recycling</title><script>var x = 1;</script></head>"
        "<body><nav>Home</nav><p>Glass goes in the green bin.</p></body></html>"
    )
    (folder / "sub" / "form.pdf").write_bytes(minimal_pdf("Submit the form within 10 days."))
    (folder / "empty.txt").write_bytes(b"")
    (folder / "binary.txt").write_bytes(b"\x00\x01\x02binary")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf")
    (folder / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    (folder / ".hidden.txt").write_text("Editors leave these around.")
    corpus = read_corpus(folder, max_bytes=LIMIT)
    by_id = {document.id: document for document in corpus.documents}
    assert set(by_id) == {"notes.txt", "guide.md", "page.html", "sub/form.pdf"}
    assert by_id["page.html"].title == "Recycling"
    assert "Glass goes in the green bin." in by_id["page.html"].text and "var x" not in by_id["page.html"].text
    assert "Submit the form within 10 days." in by_id["sub/form.pdf"].text
    skipped = {Path(item.source).name: item.reason for item in corpus.skipped}
    assert set(skipped) == {"empty.txt", "binary.txt", "broken.pdf", "photo.jpg"}
    assert "empty" in skipped["empty.txt"] and "binary" in skipped["binary.txt"]
    assert "Cannot read PDF" in skipped["broken.pdf"] and "unsupported file type .jpg" in skipped["photo.jpg"]


def test_glob_pattern(tmp_path: Path) -> None:
    for name in ("a.txt", "b.txt", "c.md"):
        (tmp_path / name).write_text(f"This is the document called {name}, with some words.")
    corpus = read_corpus(str(tmp_path / "*.txt"), max_bytes=LIMIT)
    assert [Path(document.id).name for document in corpus.documents] == ["a.txt", "b.txt"]
    with pytest.raises(DocumentError, match="No files match"):
        read_corpus(str(tmp_path / "*.pdf"), max_bytes=LIMIT)


def test_non_utf8_file_names_become_printable_ids(tmp_path: Path) -> None:
    folder = tmp_path / "corpus"
    folder.mkdir()
    raw_name = os.fsdecode(b"caf\xe9.txt")
    (folder / raw_name).write_text("Opening hours are nine to five on weekdays.")
    document = read_corpus(folder, max_bytes=LIMIT).documents[0]
    assert document.id == "caf\ufffd.txt"
    assert json.loads(document.model_dump_json())["id"] == "caf\ufffd.txt"


def test_nothing_readable_is_a_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "empty.txt").write_bytes(b"")
    with pytest.raises(DocumentError, match=r"No readable documents in .*empty\.txt: Document file is empty"):
        read_corpus(folder, max_bytes=LIMIT)
    with pytest.raises(DocumentError, match="Corpus not found"):
        read_corpus(tmp_path / "missing", max_bytes=LIMIT)


def test_documents_given_in_code() -> None:
    documents = [Document(id="x", text="Some text about ferries."), Document(id="y", text="")]
    corpus = read_corpus(documents, max_bytes=LIMIT)
    assert [document.id for document in corpus.documents] == ["x"] and len(corpus.skipped) == 1


def test_fingerprint_changes_with_the_text(tmp_path: Path) -> None:
    shutil.copy(DATA / "quac_docs.jsonl", tmp_path / "docs.jsonl")
    before = read_corpus(tmp_path / "docs.jsonl", max_bytes=LIMIT).fingerprint()
    rows = [json.loads(line) for line in (tmp_path / "docs.jsonl").read_text().splitlines()]
    rows[0]["text"] += " One more sentence."
    write_jsonl(tmp_path / "docs.jsonl", rows)
    assert read_corpus(tmp_path / "docs.jsonl", max_bytes=LIMIT).fingerprint() != before
