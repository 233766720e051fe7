"""Run-time passages of real documents as injection negatives, with whole documents held out.

The detector's false alarms on the shared documents, chunked as `codi run` chunks them, were 3.8 % of the Doc2Dial
passages and 1.4 % of the QuAC ones (FAQ questions such as "What is a driving school instructor?" and procedural
imperatives such as "Send the form to : Data Services…"), while the held-out `clean:document` chunks of
the training file showed none. Those chunks are short excerpts around an injection point; a run sees whole
passages. So whole passages of four documents in five become negatives here, and the fifth document is held out:
its passages, and every training record built on it (as a host), stay out of training, so the false-alarm rate on
held-out documents measures text the model never saw. A run may hold out two fifths (`RunConfig.held_fifths`): the
first fifth's false alarms were read while choosing the data of later runs, the second's were not.

Chunking needs codi's own chunker (`codi_agents.inputs`), which the training environment does not install, so the
passages are written once from codi's environment:

    .venv/bin/python -m training.checkers.passages      # writes training/out/run_passages.jsonl
"""

from __future__ import annotations

import json
import random
from typing import Any

from training.checkers.common import DATA, OUT, bucket, load_text_module, read_jsonl
from training.checkers.data import Example

PASSAGES_FILE = OUT / "run_passages.jsonl"
DOCUMENT_FILES = {"doc2dial": "documents_doc2dial_273.jsonl", "quac": "documents_quac_200.jsonl"}


def document_bucket(source: str, doc_id: str) -> int:
    """A document's fifth (0 to 4), by a stable hash of its source and id."""
    return bucket(f"document:{source}:{doc_id}", 5)


def held_out_document(source: str, doc_id: str, fifths: int = 1) -> bool:
    """The documents of the first `fifths` fifths are never trained on (one in five by default)."""
    return document_bucket(source, doc_id) < fifths


def host_document(record: dict[str, Any]) -> tuple[str, str] | None:
    """(source, document id) of a training record built on a shared document (`meta.host_id` is
    `<source>:<document id>:<span>`; document ids may hold colons), else None."""
    host_id = str(record["meta"].get("host_id") or "")
    source, _, rest = host_id.partition(":")
    if source not in DOCUMENT_FILES or ":" not in rest:
        return None
    return source, rest.rsplit(":", 1)[0]


def on_held_out_document(record: dict[str, Any], fifths: int = 1) -> bool:
    """True for a training record whose host text comes from a held-out document."""
    document = host_document(record)
    return document is not None and held_out_document(*document, fifths=fifths)


def write_passages() -> int:
    """Chunk every shared document as `codi run` does and write its passages (codi's environment only)."""
    from codi_agents.inputs._documents import Document
    from codi_agents.inputs._passages import chunk_document

    PASSAGES_FILE.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with PASSAGES_FILE.open("w", encoding="utf-8") as out:
        for source, name in DOCUMENT_FILES.items():
            for row in read_jsonl(DATA / name):
                document = Document(id=str(row["doc_id"]), text=row["text"])
                for passage in chunk_document(document):
                    out.write(json.dumps({"source": source, "doc_id": document.id, "text": passage.text}))
                    out.write("\n")
                    count += 1
    return count


def run_passages(held_out: bool, fifths: int = 1) -> list[dict[str, Any]]:
    """The written passages of the held-out documents (`held_out=True`) or of the others; each row's `bucket` is
    its document's fifth."""
    if not PASSAGES_FILE.is_file():
        raise FileNotFoundError(f"{PASSAGES_FILE} is missing: run `.venv/bin/python -m training.checkers.passages`")
    rows = [row | {"bucket": document_bucket(row["source"], row["doc_id"])} for row in read_jsonl(PASSAGES_FILE)]
    return [row for row in rows if (row["bucket"] < fifths) == held_out]


def passage_windows(tokenizer: Any, max_tokens: int, count: int, seed: int, fifths: int = 1) -> list[Example]:
    """`count` run-time windows of training documents' passages, as negatives (a sample, seeded; all of them when
    `count` is at least their number)."""
    text = load_text_module()
    pool = [
        Example(
            window, "", "", 0, f"{row['source']}:{row['doc_id']}", tags={"family": "run_passage", "host": row["source"]}
        )
        for row in run_passages(held_out=False, fifths=fifths)
        for window in text.windows(row["text"], tokenizer, max_tokens)
    ]
    random.Random(seed + 41).shuffle(pool)
    return pool[:count]


if __name__ == "__main__":
    print(f"{write_passages()} passages -> {PASSAGES_FILE}")
