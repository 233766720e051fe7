"""A session: the resources many conversations share, opened once and closed once.

Models per role (and the embedded server when a role needs it), the passage index, the compiled
graph and the critic's calibration. `simulate` opens a session for one conversation; a batch run
opens one for the whole run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from chromadb.api.types import Documents, EmbeddingFunction

from codi_agents._ids import stable_hash
from codi_agents._record import Conversation
from codi_agents.config._discovery import with_discovered_models
from codi_agents.config._roles import resolve_roles
from codi_agents.config._settings import ROLES, Role, Settings
from codi_agents.critic._calibration import Calibration, load_calibration
from codi_agents.inputs._documents import Document
from codi_agents.inputs._flows import FlowGraph
from codi_agents.inputs._passages import Passage, chunk_document
from codi_agents.inputs._personas import Persona
from codi_agents.llm._calls import RoleModel, model_name
from codi_agents.llm._local_server import MODEL_ALIAS, LocalModelServer
from codi_agents.llm._models import ModelsArgument, build_role_models, role_instances
from codi_agents.retrieval._cache import collection_name, index_key, index_parts
from codi_agents.retrieval._embeddings import default_embedding_function, embedding_identity
from codi_agents.retrieval._index import DEFAULT_COLLECTION, PassageIndex
from codi_agents.retrieval._indexing_threads import on_indexing_threads
from codi_agents.simulation._context import SimulationContext
from codi_agents.simulation._conversation_record import conversation_record
from codi_agents.simulation._graph import build_graph, recursion_limit
from codi_agents.simulation._state import SimulationInput
from codi_agents.tasks import get_task
from codi_agents.tasks._base import Task


class Session:
    """Shared resources for simulating conversations; use as a context manager (sync or async)."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        models: ModelsArgument = None,
        embedding_function: EmbeddingFunction[Documents] | None = None,
        calibration: Calibration | None = None,
        task: Task | str | None = None,
        local_server_url: str | None = None,
        index_collection: str | None = None,
    ) -> None:
        """`local_server_url` points the embedded roles at an embedded server another process started
        (a batch run's workers share the parent's) instead of starting one. `index_collection` names the
        passage index's collection (a run's workers use the driver's); default: named by `index_key`. An
        endpoint with a URL and no model name is asked here, once, which model it serves
        (`codi_agents.config.with_discovered_models`): the settings and the fingerprint name that model."""
        self._instances = role_instances(models)
        self.settings = with_discovered_models(settings or Settings(), self._instances.keys())
        self.roles = resolve_roles(self.settings, self._instances.keys())
        """How each role is served: the one place the embedded decision and the defaults are read from."""
        self.task = task if isinstance(task, Task) else get_task(task or self.settings.task)
        self.calibration = calibration or load_calibration(self.settings.critic_calibration)
        self._owns_embedding = embedding_function is None
        self._embedding_function = (
            embedding_function if embedding_function is not None else default_embedding_function(self.settings)
        )
        """Given, or the settings' `[embedding]` server, or the packaged MiniLM (loaded on first use)."""
        self._index_collection = index_collection
        self.server: LocalModelServer | None = None
        self._local_server_url = local_server_url
        self._loop: asyncio.AbstractEventLoop | None = None
        self.context: SimulationContext | None = None
        self.index: PassageIndex | None = None
        self._graph: Any = None
        self._fingerprint: tuple[Settings | None, str] = (None, "")

    def open(self) -> Session:
        """Start the embedded model if a role needs it, build the models, open the index, compile the graph."""
        if self.context is not None:
            return self
        if self.roles.needs_embedded_model and self._local_server_url is None:
            self.server = LocalModelServer(
                context_window=self.settings.local_context_window, threads=self.settings.local_threads
            )
            self.server.start()
        try:
            models = self._build_models()
            persistent = bool(self.settings.chroma_path or self.settings.chroma_url)
            self.index = PassageIndex.open(
                self.embedding_function,
                path=self.settings.chroma_path,
                url=self.settings.chroma_url,
                collection=self.index_collection if persistent else DEFAULT_COLLECTION,
            )
            judge_weight = self.roles.judge_weight(
                self.settings.judge_weight,
                embedded=self.calibration.judge_weight_embedded,
                remote=self.calibration.judge_weight_remote,
            )
            self.context = SimulationContext(
                task=self.task,
                settings=self.settings,
                models=models,
                index=self.index,
                calibration=self.calibration,
                judge_weight=judge_weight,
                embed=self.embedding_function,
                embedded_roles=self.roles.embedded_roles,
            )
            self._graph = build_graph(self.task)
        except BaseException:
            self.close()
            raise
        return self

    @property
    def index_parts(self) -> dict[str, Any]:
        """What the passage index's content depends on (chunking, embedding model, detector), by part."""
        return index_parts(self.settings.chunk_size, self.settings.chunk_overlap, self.embedding_function)

    @property
    def index_collection(self) -> str:
        """The collection of a persistent passage index: the given one, else named by the key of `index_parts`."""
        return self._index_collection or collection_name(index_key(self.index_parts))

    def _build_models(self) -> dict[Role, RoleModel]:
        return build_role_models(
            self.settings,
            self._instances,
            roles=self.roles,
            local_url=self.server.base_url if self.server else self._local_server_url,
            local_model_name=self.server.model_name if self.server else MODEL_ALIAS,
        )

    def _bind_to_running_loop(self, context: SimulationContext) -> SimulationContext:
        """Rebuild the models' HTTP clients and limits when called from a new event loop.

        Clients and asyncio primitives belong to the loop they were first used on; a session used
        from several `asyncio.run` calls in turn gets fresh ones for each new loop.
        """
        loop = asyncio.get_running_loop()
        if self._loop is not None and loop is not self._loop:
            context = replace(context, models=self._build_models())
            self.context = context
        self._loop = loop
        return context

    async def aclose(self) -> None:
        """`close_connections()`, then `close()`."""
        await self.close_connections()
        self.close()

    async def close_connections(self) -> None:
        """Close the HTTP connections of the models the session built (from the loop that used them)."""
        if self.context is None or self._loop not in (None, asyncio.get_running_loop()):
            return
        for model in self.context.models.values():
            await model.aclose()

    def close(self) -> None:
        """Drop an in-memory index and stop the embedded model server; safe to call twice."""
        if self.index is not None:
            self.index.close()
            self.index = None
        if self.server is not None:
            self.server.stop()
            self.server = None
        close_embedding = getattr(self._embedding_function, "close", None)
        if self._owns_embedding and callable(close_embedding):
            close_embedding()  # an embeddings server's connections (it reconnects if used again)
        self.context = None

    def __enter__(self) -> Session:
        return self.open()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Session:
        return self.open()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @property
    def models(self) -> dict[str, str]:
        """The model name per role, as the record keeps it."""
        context = self._require_open()
        return {role: context.models[role].name for role in ROLES}

    @property
    def model_instance_names(self) -> dict[str, str]:
        """The chat models passed in, by role: they are not in the settings, so their names stand for them."""
        return {role: model_name(chat) for role, chat in sorted(self._instances.items())}

    @property
    def embedding_function(self) -> EmbeddingFunction[Documents]:
        """The embedding function of the index and the critic."""
        return self._embedding_function

    @property
    def fingerprint(self) -> str:
        """A hash of everything that shapes output: settings, task version, calibration, embedding (worked out
        once per settings object: every conversation's id names it, and settings are replaced, not changed)."""
        if self._fingerprint[0] is not self.settings:
            self._fingerprint = (
                self.settings,
                stable_hash(
                    {
                        "settings": self.settings.output_affecting(),
                        "task": [self.task.name, self.task.version],
                        "calibration": self.calibration.digest(),  # the numbers, not only the version label
                        "embedding": embedding_identity(self._embedding_function),
                        "model_instances": self.model_instance_names,
                    }
                ),
            )
        return self._fingerprint[1]

    def prepare(self, document: Document) -> list[Passage]:
        """Chunk a document and index its passages (once per text)."""
        context = self._require_open()
        passages = chunk_document(
            document, chunk_size=self.settings.chunk_size, chunk_overlap=self.settings.chunk_overlap
        )
        context.index.add(document, passages)
        return passages

    async def aprepare(self, document: Document) -> list[Passage]:
        """`prepare`, awaited, on the threads kept for indexing (`retrieval._indexing_threads`)."""
        return await on_indexing_threads(self.prepare, document)

    async def simulate(
        self,
        document: Document,
        persona: Persona,
        flow: FlowGraph,
        *,
        seed: int,
        passages: Sequence[Passage] | None = None,
    ) -> Conversation:
        """Simulate one conversation; the record says whether the critic accepted it."""
        context = self._bind_to_running_loop(self._require_open())
        if self.server is not None:
            self.server.check_alive()
        started = time.perf_counter()
        if passages is None:
            passages = await self.aprepare(document)
        state: SimulationInput = {
            "document": document,
            "passages": list(passages),
            "persona": persona,
            "flow": flow,
            "seed": seed,
        }
        config = {"recursion_limit": recursion_limit(self.settings, flow.max_turns)}
        try:
            output = await self._graph.ainvoke(state, config=config, context=context)
        except Exception:
            if self.server is not None:
                self.server.check_alive()
            raise
        return conversation_record(
            state,
            output,
            task=self.task.name,
            fingerprint=self.fingerprint,
            models=self.models,
            user_mode=self.settings.user_mode,
            secrets=self.settings.secrets(),
            duration_seconds=time.perf_counter() - started,
        )

    def _require_open(self) -> SimulationContext:
        if self.context is None:
            raise RuntimeError("The session is not open: use `with Session(...) as session:` or call open().")
        return self.context
