"""fetafix's exceptions. The text of each is the one-line message the CLI prints after "fetafix: "."""


class Error(Exception):
    """Anything fetafix refuses or fails to do. `exit_code` is the code the CLI exits with."""

    def __init__(self, message, exit_code=2):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class BadInputError(Error, ValueError):
    """A bad model, sample, option or patch (the CLI's exit code 2); nothing was written."""


class InternalError(Error, RuntimeError):
    """A bug in fetafix or its runtime (the CLI's exit code 4)."""


class Stopped(Error):
    """The progress callback returned False."""

    def __init__(self, message="stopped by the progress callback", exit_code=2):
        super().__init__(message, exit_code)


def error_class(exit_code):
    """The exception class for a C++ error with this exit code."""
    return InternalError if exit_code == 4 else BadInputError if exit_code == 2 else Error
