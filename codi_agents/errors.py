"""One small exception tree: the user's mistakes apart from failures of a run.

`UserError` and its children mean "fix your input or settings and try again";
`RunError` and its children mean "something outside codi misbehaved" (a model, a server).
Every message says what happened and what to do about it.
"""

from __future__ import annotations


class CodiError(Exception):
    """Base of every error codi raises on purpose."""


class UserError(CodiError):
    """The input or the settings are wrong; the message says how to fix them."""


class DocumentError(UserError):
    """A document is missing, empty, binary, too large or cannot be parsed."""


class PersonaError(UserError):
    """A persona file or name is wrong."""


class FlowError(UserError):
    """A conversation-flow graph file is wrong."""


class ConfigError(UserError):
    """A setting or a config file is wrong, or an endpoint is not configured."""


class TaskError(UserError):
    """A conversational task is unknown, malformed or registered twice."""


class RunDirectoryError(UserError):
    """A run directory cannot be used as asked: another run is writing it, it holds another run's files or a
    changed config, or one of its files is missing, corrupt or of another format; the message names the file."""


class ExportError(UserError):
    """The export cannot be written: nothing to export, or the output directory is in the way."""


class ReferenceDataError(UserError):
    """A reference file of human conversations cannot be read; the message names the file and line."""


class RunError(CodiError):
    """A run failed for a reason outside the user's input."""


class ServerUnavailableError(RunError):
    """A model server did not answer, or kept failing, after the allowed retries."""


class EndpointDownError(ServerUnavailableError):
    """Most recent requests to an endpoint failed over a sustained period: the run should stop."""


class RequestRejectedError(RunError):
    """The server refused a request in a way retrying cannot fix (a 4xx other than 408, 409 or 429)."""


class EmbeddingError(RunError):
    """The embedding model failed, or its server answered with vectors codi cannot use (wrong size or count)."""


class LocalModelError(RunError):
    """The embedded local model server could not be started or died."""
