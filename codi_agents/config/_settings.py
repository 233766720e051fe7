"""Settings: which models to call and how to simulate; the validated model and its fingerprint.

`codi_agents.config._resolve` builds one from its layers (flags, a config file, `codi.toml`, the
environment); `codi_agents.config._roles` turns it into one resolved spec per role. With no
endpoint configured anywhere, every role uses the embedded local model. Secrets are `SecretStr`
and never printed.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from codi_agents._ids import stable_hash

Role = Literal["user", "assistant", "critic"]
ROLES: tuple[Role, ...] = ("user", "assistant", "critic")

DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
"""The model used when only an OpenAI API key is configured."""

ROLE_TEMPERATURES: dict[Role, float] = {"user": 0.8, "assistant": 0.3, "critic": 0.0}
"""Users vary (diversity), assistants stay close to the passages, the critic is deterministic."""
EMBEDDED_TEMPERATURES: dict[Role, float] = {"user": 0.6, "assistant": 0.2, "critic": 0.0}
"""A 135M model drifts off topic quickly: lower temperatures than for strong models (measured on prompts)."""

StructuredOutputMethod = Literal["function_calling", "json_schema", "json_mode"]
ChatClient = Literal["codi", "langchain-openai"]
AcceptancePolicy = Literal["all_turns", "accepted_prefix"]
UserMode = Literal["reader", "seeker"]
UserOutput = Literal["auto", "text", "structured"]


class EndpointSettings(BaseModel):
    """How to reach one OpenAI-compatible chat model. Unset fields inherit from the shared endpoint."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = Field(default=None, description="Endpoint URL, e.g. http://localhost:8000/v1.")
    api_key: SecretStr | None = Field(default=None, description="API key; never written anywhere.")
    model: str | None = Field(default=None, description="Model name on the endpoint.")
    temperature: float | None = Field(default=None, ge=0, le=2, description="Sampling temperature.")
    max_tokens: int | None = Field(default=None, ge=1, description="Most tokens per reply.")
    timeout: float | None = Field(default=None, gt=0, description="Seconds before a request times out.")
    max_retries: int | None = Field(default=None, ge=0, description="Retries of a failed request.")
    max_concurrency: int | None = Field(default=None, ge=1, description="Requests in flight to this endpoint.")
    context_window: int | None = Field(default=None, ge=256, description="Model context in tokens, if known.")
    endpoint_down_seconds: float | None = Field(
        default=None,
        gt=0,
        description="A run stops when most requests to this endpoint failed for this long (default 30; a run "
        "config's `[limits] endpoint_down_seconds` fills it when unset).",
    )
    http_transport: Literal["aiohttp", "httpx"] | None = Field(
        default=None,
        description="HTTP transport of the OpenAI client: `aiohttp` (less CPU per request when many are in "
        "flight; the default of batch runs, which use one event loop and close it at the end) or `httpx` (the "
        "SDK's own; the default elsewhere, where a session may serve several event loops in turn).",
    )
    client: ChatClient | None = Field(
        default=None,
        description="What sends the requests: `codi` (the default; codi's own OpenAI-compatible client, a tenth "
        "of the CPU per request) or `langchain-openai` (langchain-openai's `ChatOpenAI`, for what only it "
        "supports). Replies and records are the same either way.",
    )

    @property
    def configured(self) -> bool:
        """True when this points at a remote endpoint rather than the embedded model."""
        return bool(self.base_url or self.api_key)

    def merged_over(self, base: EndpointSettings) -> EndpointSettings:
        """These settings with unset fields taken from `base`."""
        return base.model_copy(update=self.model_dump(exclude_none=True))

    def describe(self) -> str:
        """`model @ url` for people and manifests; never the key."""
        where = shown_url(self.base_url or ("https://api.openai.com/v1" if self.api_key else "embedded"))
        return f"{self.model or '?'} @ {where}"


class EmbeddingSettings(BaseModel):
    """An OpenAI-compatible `POST /v1/embeddings` server in place of the packaged MiniLM (vLLM, TEI, Ollama,
    Infinity, OpenAI). Unset (no `base_url` and no `model`): the packaged MiniLM, in process."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = Field(
        default=None, description="Endpoint URL, e.g. http://localhost:8080/v1; unset: OpenAI."
    )
    api_key: SecretStr | None = Field(
        default=None,
        description="API key; never written anywhere. Unset: the shared endpoint's key when both are the same server.",
    )
    model: str | None = Field(default=None, description="The embedding model's name on the server.")
    dimensions: int | None = Field(
        default=None,
        ge=1,
        description="Ask for vectors of this size (OpenAI text-embedding-3 and later); unset: the model's own size.",
    )
    batch_size: int | None = Field(default=None, ge=1, le=2048, description="Texts per request (default 32).")
    timeout: float | None = Field(default=None, gt=0, description="Seconds before a request times out (default 60).")
    max_retries: int | None = Field(default=None, ge=0, description="Retries of a failed request (default 4).")
    max_concurrency: int | None = Field(default=None, ge=1, description="Requests in flight (default 8).")
    endpoint_down_seconds: float | None = Field(
        default=None, gt=0, description="Stop when most requests failed for this long (default: the endpoint's)."
    )

    @property
    def configured(self) -> bool:
        """True when embeddings come from a server rather than the packaged MiniLM."""
        return bool(self.base_url or self.model)

    @model_validator(mode="after")
    def _named_model(self) -> Self:
        if self.base_url and not self.model:
            raise ValueError(
                "[embedding] has a base_url but no model: name the embedding model the server serves "
                '(e.g. model = "BAAI/bge-small-en-v1.5")'
            )
        return self


class Settings(BaseModel):
    """Everything that shapes a simulation. Fields that change output feed `fingerprint()`."""

    model_config = ConfigDict(extra="forbid")

    endpoint: EndpointSettings = Field(default_factory=EndpointSettings, description="Shared by every role.")
    user: EndpointSettings = Field(default_factory=EndpointSettings, description="User simulator overrides.")
    assistant: EndpointSettings = Field(default_factory=EndpointSettings, description="Assistant overrides.")
    critic: EndpointSettings = Field(default_factory=EndpointSettings, description="Critic overrides.")
    structured_output_method: StructuredOutputMethod = Field(
        default="function_calling",
        description="How structured output is requested; `function_calling` works on OpenAI, vLLM, Ollama, llama.cpp.",
    )
    task: str = Field(default="grounded_qa", description="The conversational task.")
    flow: str | None = Field(default=None, description="Flow graph name or path; default: the task's.")
    user_mode: UserMode = Field(
        default="reader", description="`reader` sees the document (CoQA); `seeker` sees its title and opening (QuAC)."
    )
    user_output: UserOutput = Field(
        default="auto",
        description="How the user simulator answers: `text`, or `structured` (a grammar-constrained short message, "
        "which keeps small models in role); `auto` is structured for the embedded model, text otherwise.",
    )
    top_k: int = Field(default=3, ge=1, le=20, description="Passages retrieved per user turn.")
    chunk_size: int = Field(default=800, ge=100, description="Characters per passage.")
    chunk_overlap: int = Field(default=100, ge=0, description="Characters shared by neighbouring passages.")
    max_assistant_retries: int = Field(default=2, ge=0, description="Regenerations of a rejected assistant turn.")
    max_user_retries: int = Field(default=1, ge=0, description="Regenerations of an out-of-role user turn.")
    max_parse_retries: int = Field(default=2, ge=0, description="Retries of unparseable structured output.")
    acceptance: AcceptancePolicy = Field(
        default="all_turns",
        description="`all_turns`: accepted when every assistant turn passed; `accepted_prefix`: keep the "
        "turns before the first failure when they reach the flow's min_turns.",
    )
    judge_weight: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Weight of the LLM judge against cheap signals; default: from the critic calibration, "
        "low for the embedded model, high for a configured endpoint. 0 skips the judge.",
    )
    critic_calibration: str | None = Field(
        default=None,
        description="A critic calibration TOML, as `codi eval-critic FILE --fit OUT.toml` writes it; default: the "
        "shipped one. Its content, not its path, enters the fingerprint.",
    )
    local_context_window: int = Field(default=4096, ge=512, description="Context of the embedded model.")
    local_threads: int | None = Field(default=None, ge=1, description="CPU threads of the embedded model.")
    seed: int = Field(default=0, description="Seed for flow sampling and conversation ids.")
    max_document_bytes: int = Field(default=5_000_000, ge=1, description="Larger documents are cut or skipped.")
    oversize: Literal["truncate", "skip"] = Field(default="truncate", description="What to do with larger ones.")
    chroma_path: str | None = Field(default=None, description="Persist the passage index in this folder.")
    chroma_url: str | None = Field(default=None, description="Use a Chroma server at this URL instead.")
    embedding: EmbeddingSettings = Field(
        default_factory=EmbeddingSettings,
        description="An embeddings server for indexing, retrieval and the critic; unset: the packaged MiniLM.",
    )

    def endpoint_for(self, role: Role) -> EndpointSettings:
        """The endpoint settings of `role` as the user set them: its own fields over the shared ones.

        Unset fields stay None; `codi_agents.config.resolve_roles` decides the defaults."""
        return getattr(self, role).merged_over(self.endpoint)  # type: ignore[no-any-return]

    def secrets(self) -> list[str]:
        """Every API key in these settings, for redaction: keys, and credentials written into a `base_url`
        (`https://user:password@host/v1`, `...?api-key=...`)."""
        endpoints = [getattr(self, name) for name in ("endpoint", *ROLES, "embedding")]
        keys = [endpoint.api_key.get_secret_value() for endpoint in endpoints if endpoint.api_key is not None]
        return keys + [secret for endpoint in endpoints for secret in url_credentials(endpoint.base_url)]

    def output_affecting(self) -> dict[str, Any]:
        """The settings that change what is generated (no keys, timeouts or concurrency)."""
        data = self.model_dump(
            mode="json",
            exclude=set(NOT_OUTPUT_AFFECTING),
        )
        for role in ROLES:
            endpoint = self.endpoint_for(role)
            # The remote default stands for an unset temperature, embedded roles included: the hash that
            # conversation ids and resumes rest on stays what it was (the embedded model's own defaults are
            # fixed by codi's version, which every record keeps).
            temperature = default_temperature(endpoint.temperature, role, embedded=False)
            data[f"{role}_model"] = endpoint.model_copy(update={"temperature": temperature}).model_dump(
                mode="json", include={"base_url", "model", "temperature", "max_tokens", "context_window"}
            )
        if self.embedding.configured:
            # The model and the size asked for, not the server's URL: the same model serves the same vectors
            # wherever it runs, and moving a server must not make every id new (MiniLM, unset, adds nothing).
            data["embedding_model"] = self.embedding.model_dump(mode="json", include={"model", "dimensions"})
        return data

    def fingerprint(self) -> str:
        """A short hash of `output_affecting()`: equal fingerprints mean equal outputs for equal inputs."""
        return stable_hash(self.output_affecting())


NOT_OUTPUT_AFFECTING = frozenset(
    {
        "endpoint",
        "user",
        "assistant",
        "critic",
        "chroma_path",
        "chroma_url",
        "seed",
        "local_threads",
        "critic_calibration",
        "embedding",
    }
)
"""Settings left out of `output_affecting`: the endpoints enter it role by role, without keys; the session
hashes the calibration's numbers instead of its path; the embedding server enters it as its model only."""


_CREDENTIAL_PARAMETERS = re.compile(r"(api[-_]?key|key|token|access[-_]?token|secret|password|sig|signature)$", re.I)


def default_temperature(explicit: float | None, role: Role, *, embedded: bool) -> float:
    """The temperature a role samples at: the one the user set, else the role's default (lower for the
    embedded model). The one place this default is decided."""
    if explicit is not None:
        return float(explicit)
    return (EMBEDDED_TEMPERATURES if embedded else ROLE_TEMPERATURES)[role]


def url_credentials(url: str | None) -> list[str]:
    """Credentials inside a URL: its password (and user:password), and values of key-like query parameters."""
    if not url:
        return []
    parts = urllib.parse.urlsplit(url)
    found = []
    if parts.password:
        found += [parts.password, f"{parts.username}:{parts.password}"]
    for name, value in urllib.parse.parse_qsl(parts.query):
        if value and _CREDENTIAL_PARAMETERS.search(name):
            found.append(value)
    return found


def shown_url(url: str) -> str:
    """`url` with the credentials written into it replaced by `***`."""
    for credential in url_credentials(url):
        url = url.replace(credential, "***")
    return url
