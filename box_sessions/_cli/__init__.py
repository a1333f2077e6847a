"""The ``box-sessions`` command line: ``terminate``, ``fake-server`` and ``demo``.

One module a concern: ``_main`` parses the arguments and maps errors to exit statuses; ``_terminate``
runs a job from ``_inputs`` and ``_credentials`` through the client, writing ``_journal``,
``_report_file``, ``_progress`` and ``_summary`` as batches complete. The report and the journal are
their owner's only (``_private``) and never land on what the job reads (``_outputs``). ``_fake``
serves FakeBox and runs the demo, and is the only module that imports ``box_sessions.testing``.
"""

from ._main import main

__all__ = ["main"]
