"""How the command ends: its exit statuses, and the usage error that ends it with status 2."""

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
#: Ctrl-C; SIGTERM ends the command with 128 + 15 = 143, as a shell reports a signal.
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """A mistake in the command or its environment: one sentence on stderr, exit 2."""
