"""pytest plugin: options, session fixtures, the ``parity`` marker and the summary of figures.

Registered through the ``pytest11`` entry point, so any project that installs the package
gets it; its parts register through ``pytest_plugins``, one module per responsibility (a
part that another imports is listed before it, so pytest can rewrite its asserts; ``keys``
and ``gates`` hold no hooks and are plain imports).
Heavy imports (torch, onnxruntime) happen inside fixtures, not at collection.
"""

pytest_plugins = [
    "parity.pytest_plugin.options",
    "parity.pytest_plugin.sweep",
    "parity.pytest_plugin.hooks",
    "parity.pytest_plugin.rejoin",
    "parity.pytest_plugin.fixtures",
    "parity.pytest_plugin.trained",
    "parity.pytest_plugin.requirements",
    "parity.pytest_plugin.latency",
    "parity.pytest_plugin.subject_fixtures",
]
