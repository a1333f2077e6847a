"""The ``box-sessions`` command line, run as a real process (``tests/support/cli_process.py``) against FakeBox."""
