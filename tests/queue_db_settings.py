"""The test project with a dedicated queue database (docs/deployment.md): ``DJQ_DATABASE =
"queue"`` and ``djq.routers.DjqRouter``. Both databases come from the environment
(``DATABASE_URL``, ``QUEUE_DATABASE_URL``); tests/system/test_deployment.py runs it in
subprocesses."""

from testproject.settings import *  # noqa: F403
from testproject.settings import DATABASES, env

DATABASES["queue"] = env.db_url("QUEUE_DATABASE_URL")
if DATABASES["queue"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["queue"]["OPTIONS"] = dict(DATABASES["default"].get("OPTIONS", {}))
DJQ_DATABASE = "queue"
DATABASE_ROUTERS = ["djq.routers.DjqRouter"]
