"""Suite-wide pytest configuration.

pytest only honours ``pytest_plugins`` in a conftest it loads at start-up, so the Jupyter server fixtures
(``jp_fetch``, ``jp_ws_fetch``, …) used by tests/jobserver and tests/kernel are registered here, once.
"""

pytest_plugins = ["pytest_jupyter.jupyter_server"]
