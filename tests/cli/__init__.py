"""The ``box-sessions`` command line, run as a real process (``tests/cli_process.py``) against FakeBox."""
