"""Passage sentence vectors pooled from the passage's own run: the critic's passage sentences cost no model run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tokenizers import Tokenizer

from codi_agents import Document
from codi_agents._sentences import sentences
from codi_agents.critic._signals import similarity_signals
from codi_agents.inputs._passages import chunk_document
from codi_agents.retrieval._batcher import EmbeddingBatcher, batcher_for
from codi_agents.retrieval._embeddings import MAX_TOKENS, TOKENIZER_FILE, MiniLMEmbeddingFunction
from codi_agents.retrieval._index import PassageIndex
from codi_agents.retrieval._passage_sentences import sentences_key
from codi_agents.retrieval._vector_store import VectorStore

PASSAGE = (
    "The licensing office opens at eight and closes at five. It is closed on public holidays. "
    "You can renew a licence online, by post or in person."
)


class CountingMiniLM(MiniLMEmbeddingFunction):
    """The packaged MiniLM, counting the texts its model runs on (single texts, and passages pooled late)."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self.passages: list[str] = []

    def __call__(self, input: Any) -> Any:
        self.texts.extend(input)
        return super().__call__(input)

    def embed_passages(self, texts: list[str]) -> tuple[np.ndarray, list[np.ndarray]]:
        self.passages.extend(texts)
        return super().embed_passages(texts)


def test_a_passage_gives_its_usual_vector_and_one_unit_vector_per_sentence_from_the_same_run() -> None:
    embed = MiniLMEmbeddingFunction()
    long_passage = "Filler words about nothing in particular. " * 60 + "The fee is forty dollars."
    texts = [PASSAGE, "ok", long_passage]
    vectors, rows = embed.embed_passages(texts)
    assert np.allclose(vectors, np.asarray(embed(texts)), atol=1e-6)  # the index's vectors do not change
    assert [len(matrix) for matrix in rows] == [len(sentences(text)) for text in texts] == [3, 0, 61]
    assert np.allclose(np.linalg.norm(rows[0], axis=1), 1.0, atol=1e-4)
    alone = np.asarray(embed(sentences(PASSAGE)))
    read_in_place = np.sum(rows[0] * alone, axis=1)
    assert np.all(read_in_place > 0.6) and np.all(read_in_place < 0.999)  # the same sentence, read in its passage
    assert len(Tokenizer.from_file(str(TOKENIZER_FILE)).encode(long_passage).ids) > MAX_TOKENS
    past_the_window = np.asarray(embed(["The fee is forty dollars."]))[0]
    assert np.allclose(rows[2][-1], past_the_window, atol=1e-6)  # cut off by truncation: embedded on its own


def test_sentences_of_an_indexed_passage_cost_the_critic_no_model_run(document: Document) -> None:
    embed = CountingMiniLM()
    index = PassageIndex.open(embed)
    passages = chunk_document(document, chunk_size=300, chunk_overlap=0)
    index.add(document, passages)
    assert embed.passages == [passage.text for passage in passages] and embed.texts == []
    answer = "You have ten days to report it. You can do it online."
    signals = similarity_signals(answer, passages[:2], "How long do I have?", embed)
    assert sorted(embed.texts) == sorted([*sentences(answer), "How long do I have?"])  # only the reply and question
    assert len(embed.passages) == len(passages)

    fresh = CountingMiniLM()  # `codi eval-critic`: the evidence was never indexed, so it is run once, the same way
    assert similarity_signals(answer, passages[:2], "How long do I have?", fresh) == pytest.approx(signals, abs=1e-6)
    assert fresh.passages == [passage.text for passage in passages[:2]]
    assert set(signals) == {"min_similarity", "mean_similarity", "question_support"}


def test_sentence_vectors_are_kept_beside_the_index_and_a_damaged_entry_is_made_again(tmp_path: Path) -> None:
    store = VectorStore(tmp_path / "kept.sqlite")
    first = EmbeddingBatcher(CountingMiniLM())
    first.store = store
    first.embed([PASSAGE], bulk=True, sentences=True)
    kept = first.embed([PASSAGE], sentences=True)
    assert kept.shape == (3, 384) and store.stored == 1
    store.close()

    model = CountingMiniLM()
    later = EmbeddingBatcher(model)  # another run over the same index: nothing in memory, the same file
    later.store = VectorStore(tmp_path / "kept.sqlite")
    assert np.array_equal(later.embed([PASSAGE, PASSAGE], sentences=True), np.concatenate([kept, kept]))
    assert model.passages == [] and model.texts == []

    later.store.put([(sentences_key("A first sentence here. A second one."), np.ones(5, dtype=np.float32))])
    damaged = later.embed(["A first sentence here. A second one."], sentences=True)  # 5 floats fit no 2 x 384
    assert damaged.shape == (2, 384) and model.passages == ["A first sentence here. A second one."]


def test_an_embedding_function_that_cannot_pool_embeds_each_passage_sentence_on_its_own() -> None:
    texts: list[str] = []

    def plain(batch: list[str]) -> np.ndarray:
        texts.extend(batch)
        return np.asarray(MiniLMEmbeddingFunction()(batch))

    batcher = batcher_for(plain)
    assert not batcher.late
    rows = batcher.embed([PASSAGE], sentences=True)  # asked as passages, answered as texts
    assert rows.shape == (1, 384) and texts == [PASSAGE]
    answer = "It opens at eight."
    signals = similarity_signals(answer, chunk_document(Document(id="d", text=PASSAGE)), "", plain)
    assert set(texts) == {PASSAGE, answer, *sentences(PASSAGE)} and signals["min_similarity"] > 0.5


def test_a_reply_sentence_quoted_word_for_word_from_a_passage_scores_one_without_being_embedded() -> None:
    embed = CountingMiniLM()
    passages = chunk_document(Document(id="office", text=PASSAGE))
    quoted = "It is closed on public holidays."
    signals = similarity_signals(f"{quoted} Bring your old licence.", passages, "", embed)
    assert embed.texts == ["Bring your old licence."]  # the quoted sentence needs no vector
    assert signals["mean_similarity"] > signals["min_similarity"]
    assert similarity_signals(quoted, passages, "", embed) == {"min_similarity": 1.0, "mean_similarity": 1.0}
    assert embed.texts == ["Bring your old licence."]
