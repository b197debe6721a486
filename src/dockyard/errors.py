"""One error hierarchy for the whole engine.

Each class carries the HTTP status Docker uses for that class of failure
(moby's errdefs), so the API layer maps errors to the wire in one place
(`dockyard.api.server`) and domain code never thinks about HTTP.
"""


class DockyardError(Exception):
    status = 500

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidParameter(DockyardError):   # errdefs.InvalidParameter
    status = 400


class NotFound(DockyardError):           # errdefs.NotFound
    status = 404


class Conflict(DockyardError):           # errdefs.Conflict
    status = 409


class NotModified(DockyardError):        # errdefs.NotModified (start running / stop stopped)
    status = 304


class Forbidden(DockyardError):          # errdefs.Forbidden
    status = 403


class NotImplementedYet(DockyardError):  # errdefs.NotImplemented
    status = 501


class Unavailable(DockyardError):
    status = 503


class SystemError_(DockyardError):       # errdefs.System: the host failed us
    status = 500


class NoSpace(SystemError_):
    """A write refused by a full disk: moby answers 500 with the OS error,
    Go's "<op> <path>: no space left on device"."""

    def __init__(self, what: str):
        super().__init__(f"{what}: no space left on device")


class NoSuchContainer(NotFound):
    def __init__(self, ref: str):
        super().__init__(f"No such container: {ref}")


class NoSuchImage(NotFound):
    def __init__(self, ref: str):
        super().__init__(f"No such image: {ref}")


class BuildFailed(DockyardError):
    """A build step failed after the progress stream began: reported in the
    stream as {"errorDetail": {"code": code, "message": ...}, "error": ...}."""
    status = 400

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.code = code
