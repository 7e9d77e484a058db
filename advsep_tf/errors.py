"""The package's own error type: the front ends turn it into one clear line and exit code 1."""


class AdvsepError(Exception):
    """Bad input or configuration, with a message that names the file and the problem."""


class UsageError(AdvsepError):
    """A command-line value wrong on its face (an unknown preset or source name): exit code 2."""


class ConfigMismatchError(AdvsepError):
    """A configuration read from disk differs from the one in use."""
