"""Fixtures for the whole suite. The suite runs twice (make test): on PostgreSQL
(DATABASE_URL from scripts/pg-throwaway) and on SQLite (a test database *file*).

Fixtures
    start_worker(*args, name=None, env_extra=None, wait_ready=True, ready_timeout=30.0)
        Start `manage.py djq_worker -n NAME@%h -l info ARGS` against the test database; returns a
        tests.helpers.ManagedProcess (.proc .pid .name .nodename .log_text() .log_tail()
        .wait_for_log(rx) .terminate() .kill() .signal(sig) .wait(timeout) .kill_group()).
        The test must use the transactional test database:
        @pytest.mark.django_db(transaction=True). Workers run in their own process group; at
        teardown each gets SIGTERM, 15 s to exit, then SIGKILL, and its group is SIGKILLed.
        A failing test's report gets the tail of every worker's log.
    start_process(argv, name=None, env=None, ready_pattern=None)
        The same for any command (env defaults to os.environ; pass worker_env() for the test DB).

Markers
    @pytest.mark.postgres_only / @pytest.mark.sqlite_only: skipped on the other database.
    @pytest.mark.every_db: a test without database access that still depends on the database
        (its vendor, a subprocess using DATABASE_URL): runs on both passes (see below).

One pass for tests that do not touch the database
    `make test` runs the suite twice, side by side, and sets DJQ_TEST_DB_AGNOSTIC_ON=sqlite: the
    PostgreSQL pass then deselects every test that has no database access (no django_db marker,
    no database fixture; tests/unit, parsing, formatting, docs checks ...), which the SQLite pass
    runs. Without the variable (one pass alone, `pytest tests/unit`) every test runs.
"""

from __future__ import annotations

import os

import pytest

from tests.helpers import ProcessPool

POOL_KEY = pytest.StashKey[ProcessPool]()


# Django's default hasher (PBKDF2, over a million iterations) costs ~1 s of CPU per user created
# or logged in, several seconds on a loaded machine; the admin tests create a user each. The tests
# check djq, not password hashing: a fast hasher first (Django's own advice for test speed), the
# defaults after it so that a password hashed by a subprocess with the project's settings still
# verifies.
FAST_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def pytest_configure(config):
    # (imported here, as in the hooks below: Django is set up by pytest-django by now)
    from django.conf import settings
    from django.contrib.auth.hashers import reset_hashers

    if settings.configured:
        settings.PASSWORD_HASHERS = FAST_HASHERS + list(settings.PASSWORD_HASHERS)
        reset_hashers(setting="PASSWORD_HASHERS")  # what override_settings would do


#: the pass (vendor) that runs the tests without database access when both passes run (make test)
DB_AGNOSTIC_ENV = "DJQ_TEST_DB_AGNOSTIC_ON"
#: fixtures that give a test database access (pytest-django's, and ours that need it)
DB_FIXTURES = frozenset(
    {
        "db",
        "transactional_db",
        "django_db_reset_sequences",
        "django_db_serialized_rollback",
        "live_server",
        "admin_client",
        "admin_user",
        "django_user_model",
        "start_worker",
        "start_beat",
    }
)


def _db_agnostic(item) -> bool:
    if any(
        item.get_closest_marker(name)
        for name in ("django_db", "postgres_only", "sqlite_only", "every_db")
    ):
        return False
    return not DB_FIXTURES.intersection(getattr(item, "fixturenames", ()))


def pytest_collection_modifyitems(config, items):
    """Under `make test`, deselect on the other pass the tests that do not touch the database."""
    wanted = os.environ.get(DB_AGNOSTIC_ENV)
    if not wanted:
        return
    from django.conf import settings

    vendor = {"postgresql": "postgresql", "sqlite3": "sqlite"}.get(
        settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1], "?"
    )
    if vendor == wanted:
        return
    dropped = [item for item in items if _db_agnostic(item)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if not _db_agnostic(item)]


def pytest_report_header(config):
    from django.conf import settings

    db = settings.DATABASES["default"]
    engine = db["ENGINE"].rsplit(".", 1)[-1]
    name = db.get("TEST", {}).get("NAME") or f"test_{db['NAME']}"
    host = f" at {db['HOST']}:{db['PORT']}" if db.get("HOST") else ""
    header = [f"djq test database: {engine} {name}{host}"]
    if os.environ.get(DB_AGNOSTIC_ENV):
        header.append(
            f"tests without database access run on the {os.environ[DB_AGNOSTIC_ENV]} pass only "
            f"({DB_AGNOSTIC_ENV})"
        )
    return header


def pytest_runtest_setup(item):
    only = {"postgres_only": "postgresql", "sqlite_only": "sqlite"}
    wanted = [vendor for marker, vendor in only.items() if item.get_closest_marker(marker)]
    if wanted:
        from django.db import connection

        if connection.vendor not in wanted:
            pytest.skip(f"needs {' or '.join(wanted)} (this run uses {connection.vendor})")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    pool = item.stash.get(POOL_KEY, None)
    if pool is not None and report.failed:
        for title, text in pool.report():
            report.sections.append((title, text))
    return report


def _is_transactional(request) -> bool:
    marker = request.node.get_closest_marker("django_db")
    if marker is not None:
        transaction = marker.kwargs.get("transaction", marker.args[0] if marker.args else False)
        if transaction or marker.kwargs.get("reset_sequences"):
            return True
    return any(
        name in request.fixturenames
        for name in ("transactional_db", "live_server", "django_db_reset_sequences")
    )


@pytest.fixture
def process_pool(request, tmp_path):
    log_dir = tmp_path / "processes"
    log_dir.mkdir()
    pool = ProcessPool(log_dir)
    request.node.stash[POOL_KEY] = pool
    yield pool
    pool.stop_all(grace=15.0)


@pytest.fixture
def start_worker(request, process_pool):
    if not _is_transactional(request):
        pytest.fail(
            "start_worker needs the transactional test database: mark the test with "
            "@pytest.mark.django_db(transaction=True) (workers cannot see data inside the "
            "test's uncommitted transaction)",
            pytrace=False,
        )
    return process_pool.start_worker


@pytest.fixture
def start_process(process_pool):
    return process_pool.start


# --- beat (appended by the beat work; see tests/system/test_beat_processes.py) --------------------
@pytest.fixture
def start_beat(request, process_pool):
    """Start ``manage.py djq_beat -l info ARGS`` against the test database; wait until ready.

    ``start_beat(*args, name=None, env_extra=None)`` returns a ManagedProcess, like start_worker.
    """
    import sys

    from tests.helpers import MANAGE_PY, worker_env

    if not _is_transactional(request):
        pytest.fail("start_beat needs @pytest.mark.django_db(transaction=True)", pytrace=False)

    def start(*args: str, name: str | None = None, env_extra: dict | None = None):
        name = name or f"beat{len(process_pool.processes) + 1}"
        argv = [sys.executable, str(MANAGE_PY), "djq_beat", "-l", "info", *args]
        return process_pool.start(
            argv, name=name, env=worker_env(env_extra), ready_pattern=r"beat \S+: ready"
        )

    return start


# --- browser (appended by the admin work; see tests/system/test_admin_browser.py) -----------------
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def admin_browser(live_server, monkeypatch):
    """Chromium (Debian's, through Playwright) against ``live_server``.

    ``admin_browser.login(username, password, color_scheme="light")`` returns a logged-in page.
    Playwright's sync API runs an event loop in this thread, so the test's ORM calls need
    DJANGO_ALLOW_ASYNC_UNSAFE; their connection is closed at teardown so the test DB can go.
    """
    import subprocess

    from django.db import connections

    from tests.helpers import REPO_ROOT

    sync_api = pytest.importorskip("playwright.sync_api")
    found = subprocess.run(
        [str(REPO_ROOT / "scripts" / "ensure-chromium")], capture_output=True, text=True
    )
    if found.returncode != 0:
        pytest.fail(f"no Chromium for the browser test: {found.stderr.strip()}")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    class Browser:
        url = live_server.url

        def __init__(self, browser):
            self.browser = browser

        def login(self, username: str, password: str, color_scheme: str = "light"):
            context = self.browser.new_context(
                viewport={"width": 1400, "height": 1000}, color_scheme=color_scheme
            )
            page = context.new_page()
            page.goto(f"{self.url}/admin/login/")
            page.fill("#id_username", username)
            page.fill("#id_password", password)
            page.click("input[type=submit]")
            page.wait_for_load_state()
            return page

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=found.stdout.strip(), args=CHROMIUM_ARGS)
        try:
            yield Browser(browser)
        finally:
            browser.close()
            connections.close_all()
