"""Applies streams.runtime.faust_compat in every Python started with this folder on PYTHONPATH.

For faust workers started by programs that cannot import it themselves: the rebalance
test's workers, and ../shared/tools/rebalance/rootcause.py's faust_app.py (read-only):

    PYTHONPATH=tests/integration/faust_compat_site .venv/bin/python ../shared/tools/rebalance/rootcause.py faust
"""

from streams.runtime import faust_compat

faust_compat.apply()
