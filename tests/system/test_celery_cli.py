"""Issue 10, items 1-11: what a Celery user types works (commands run as subprocesses, real
workers, the public API). Each test here fails on the main branch the issue was filed against.
"""

from __future__ import annotations

import json
import re
import sys
import textwrap

import pytest
from django.contrib.admin.utils import quote
from django.db import connection
from django.test import override_settings
from django.urls import reverse

from djq import AsyncResult, control, send_task, states, task
from djq.conf import ANNOTATION_KEYS
from djq.contrib.celery_compat import check_settings, report
from djq.exceptions import TimeoutError
from djq.models import Job, Worker
from djq.options import resolve_options
from testproject.demo.tasks import add, lookup, sleep
from tests.helpers import MANAGE_PY, REPO_ROOT, run_manage, wait_for, worker_env

ADD = "testproject.demo.tasks.add"
WEIRD_ID = "report/2026_20-11 ?#x"  # a slash, an underscore code (admin quoting), URL specials


def _settings_env(**djq_settings) -> dict[str, str]:
    """env_extra for a manage.py subprocess with these settings (tests/cli_settings.py)."""
    return {
        "DJANGO_SETTINGS_MODULE": "tests.cli_settings",
        "DJQ_TEST_SETTINGS": json.dumps(djq_settings),
    }


def _output(proc) -> str:
    return proc.stdout + proc.stderr


# --- 1. djq_control ------------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_djq_control_commands_run_against_a_live_worker(start_worker):
    worker = start_worker("-c", "1", "--poll-interval", "0.1")
    proc = run_manage("djq_control", "rate_limit", ADD, "10/m", "-t", "2", check=False)
    assert proc.returncode == 0, _output(proc)
    assert f"-> {worker.nodename}:" in proc.stdout
    proc = run_manage("djq_control", "pause_queue", "reports")
    assert proc.returncode == 0
    add.apply_async((1, 1), queue="reports")
    proc = run_manage("djq_control", "purge", "-Q", "reports", check=False)
    assert proc.returncode == 0, _output(proc)
    assert proc.stdout.strip() == "1"


@pytest.mark.django_db
def test_djq_control_through_call_command():
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("djq_control", "concurrency_limit", ADD, "3", stdout=out)
    call_command("djq_control", "concurrency_limit", ADD, "none", stdout=out)


@pytest.mark.django_db(transaction=True)
def test_djq_control_bad_arguments_are_clear_errors():
    proc = run_manage("djq_control", "rate_limit", ADD, check=False)
    assert proc.returncode == 1
    assert "rate_limit takes 2 argument(s), got 1" in proc.stderr
    proc = run_manage("djq_control", "rate_limit", ADD, "fast", check=False)
    assert proc.returncode == 1 and "fast" in proc.stderr


# --- 2. revoke, then revoke with terminate --------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_revoke_then_revoke_with_terminate_kills_the_running_job(start_worker):
    from djq import store

    # (a short lease: with LISTEN, heartbeats come every lease/3, 10 s at the default 30 s)
    worker = start_worker("-c", "1", "--poll-interval", "0.2", "--lease", "6")
    result = sleep.delay(30)
    wait_for(lambda: result.state == states.STARTED, timeout=30, message="the job to start")
    result.revoke()
    seen = store.db_now()  # the worker's next heartbeat after this has seen the plain revoke
    wait_for(lambda: Worker.objects.get(name=worker.nodename).last_heartbeat > seen, timeout=20)
    assert AsyncResult(result.id).state == states.STARTED  # a plain revoke lets it run
    result.revoke(terminate=True)
    wait_for(
        lambda: AsyncResult(result.id).state == states.REVOKED,
        timeout=15,
        message="the job to be killed",
    )
    worker.wait_for_log(rf"Terminating {re.escape(result.id)} with SIGTERM", timeout=5)


# --- 3. task ids: any string up to 255 characters -----------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_string_task_ids_through_a_worker(start_worker):
    worker = start_worker("-c", "1", "--poll-interval", "0.1")
    result = add.apply_async((2, 3), task_id="report-2026-11")
    assert result.id == "report-2026-11"
    assert result.get(timeout=20) == 5
    assert AsyncResult("report-2026-11").successful()
    later = add.apply_async((1, 1), task_id=WEIRD_ID, countdown=3600)
    answer = control.inspect(timeout=5).query_task(WEIRD_ID)
    assert answer and worker.nodename in answer
    AsyncResult(WEIRD_ID).revoke()
    assert later.state == states.REVOKED
    long_id = "x" * 255
    assert add.apply_async((4, 4), task_id=long_id).get(timeout=20) == 8


@pytest.mark.django_db
def test_an_unknown_string_id_is_pending_and_never_raises():
    result = AsyncResult("this-id-does-not-exist")
    assert result.state == states.PENDING
    assert not result.ready() and not result.exists()
    assert result.result is None and result.traceback is None
    with pytest.raises(TimeoutError):
        result.get(timeout=0.1, interval=0.02)
    assert AsyncResult("y" * 300).state == states.PENDING  # longer than any id: still PENDING
    control.revoke(["not-a-uuid", "nor this"])  # nothing to revoke: no error


@pytest.mark.django_db
@pytest.mark.parametrize("bad", ["", "z" * 256, b"bytes", 12.5, "nul\x00inside"])
def test_bad_task_ids_are_refused_at_the_call_naming_the_task(bad):
    with pytest.raises(ValueError, match="testproject.demo.tasks.add: task_id"):
        add.apply_async((1, 1), task_id=bad)
    assert not Job.objects.exists()


@pytest.mark.django_db
def test_the_admin_shows_and_revokes_a_job_with_any_id(admin_client):
    result = add.apply_async((1, 2), task_id=WEIRD_ID, countdown=3600)
    page = reverse("admin:djq_job_change", args=[quote(WEIRD_ID)])
    response = admin_client.get(page)
    assert response.status_code == 200
    html = response.content.decode()
    revoke_url = reverse("admin:djq_job_action", args=[quote(WEIRD_ID), "revoke"])
    assert f'action="{revoke_url}"' in html.replace("&amp;", "&")
    response = admin_client.post(revoke_url)
    assert response.status_code == 302
    assert result.state == states.REVOKED
    listing = admin_client.get(reverse("admin:djq_job_changelist"), {"q": WEIRD_ID})
    assert listing.status_code == 200 and page in listing.content.decode()


@pytest.mark.django_db
def test_lookups_by_string_id_use_the_primary_key_index():
    add.apply_async((1, 1), task_id="k-1")
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("EXPLAIN SELECT * FROM djq_job WHERE id = ANY(%s::text[])", [["k-1"]])
            plan = "\n".join(row[0] for row in cursor.fetchall())
            assert "djq_job_pkey" in plan, plan
            cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'djq_job'")
            assert not [n for (n,) in cursor.fetchall() if n.endswith("_like")]
        else:
            cursor.execute("EXPLAIN QUERY PLAN SELECT * FROM djq_job WHERE id = %s", ["k-1"])
            plan = " ".join(str(row) for row in cursor.fetchall())
            assert "INDEX" in plan.upper(), plan
    assert AsyncResult("k-1").exists()


# --- 4. Celery's task options -----------------------------------------------------------------
def test_celery_task_options_are_accepted_or_refused_clearly(caplog):
    def f(x):
        return x

    opts = task(
        name="tests.celery_cli.opts",
        serializer="json",
        compression="gzip",
        throws=(KeyError,),
        acks_on_failure_or_timeout=True,
        trail=False,
    )(f)
    assert opts.throws == (KeyError,) and opts.serializer == "json"
    with pytest.raises(TypeError, match=r"tests.celery_cli.pickled.*pickle"):
        task(name="tests.celery_cli.pickled", serializer="pickle")(f)
    with pytest.raises(TypeError, match=r"tests.celery_cli.bad_throws.*exception classes"):
        task(name="tests.celery_cli.bad_throws", throws=("KeyError",))(f)
    with pytest.raises(TypeError, match="colour"):
        task(name="tests.celery_cli.colour", colour="red")(f)


def test_an_ignored_task_option_warns_once(caplog):
    def g():
        return 1

    with caplog.at_level("WARNING", logger="djq.task"):
        task(name="tests.celery_cli.once1", exchange_type="direct")(g)
        task(name="tests.celery_cli.once2", exchange_type="direct")(g)
    lines = [r.getMessage() for r in caplog.records if "exchange_type" in r.getMessage()]
    assert len(lines) == 1 and "tests.celery_cli.once1" in lines[0]


@pytest.mark.django_db(transaction=True)
def test_throws_fails_the_job_and_logs_it_without_a_traceback(start_worker):
    worker = start_worker("-c", "1", "--poll-interval", "0.1")
    result = lookup.delay("missing")
    with pytest.raises(KeyError):
        result.get(timeout=20)
    assert result.state == states.FAILURE and "KeyError" in result.traceback
    worker.wait_for_log(rf"\[{re.escape(result.id)}\] raised expected: KeyError", timeout=5)
    assert "Traceback" not in worker.log_text()


# --- 5. Celery's worker and beat flags ----------------------------------------------------------
WORKER_CELERY_FLAGS = [
    "--without-gossip",
    "--without-mingle",
    "--without-heartbeat",
    "-O",
    "fair",
    "--statedb",
    "/tmp/celery-worker.state",
    "--heartbeat-interval",
    "10",
    "--scheduler",
    "x.Y",
    "-s",
    "/tmp/celerybeat-schedule",
]


@pytest.mark.django_db(transaction=True)
def test_a_celery_worker_command_line_starts_with_one_warning_per_flag():
    add.delay(1, 2)
    proc = run_manage(
        "djq_worker",
        "--burst",
        "-c",
        "1",
        "--maxtasksperchild",
        "5",
        "--maxmemperchild",
        "200000",
        *WORKER_CELERY_FLAGS,
        check=False,
    )
    assert proc.returncode == 0, _output(proc)
    for flag in (
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "-O/--optimization",
        "-S/--statedb",
        "--heartbeat-interval",
        "--scheduler",
        "-s/--schedule-filename",
    ):
        lines = [ln for ln in proc.stderr.splitlines() if f"djq_worker: {flag} is not needed" in ln]
        assert len(lines) == 1, (flag, proc.stderr)
    assert Job.objects.get().state == states.SUCCESS


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("pool", ["eventlet", "gevent"])
def test_eventlet_and_gevent_pools_become_the_threads_pool(pool):
    result = add.delay(2, 2)
    proc = run_manage("djq_worker", "--burst", "-c", "2", "-P", pool, check=False)
    assert proc.returncode == 0, _output(proc)
    assert f"there is no {pool} pool in djq; using the threads pool" in proc.stderr
    assert "(threads)" in proc.stdout
    assert result.get(timeout=1) == 4


@pytest.mark.django_db(transaction=True)
def test_a_celery_beat_command_line_starts(start_process, tmp_path):
    argv = [
        sys.executable,
        str(MANAGE_PY),
        "djq_beat",
        "-l",
        "info",
        "-s",
        str(tmp_path / "celerybeat-schedule"),
        "-S",
        "django_celery_beat.schedulers:DatabaseScheduler",
    ]
    beat = start_process(argv, name="beat", env=worker_env(), ready_pattern=r"beat \S+: ready")
    log = beat.log_text()
    assert "djq_beat: -s/--schedule is not needed" in log
    assert "djq_beat: -S/--scheduler is not needed" in log
    beat.terminate()
    assert beat.wait(20) == 0
    assert not (tmp_path / "celerybeat-schedule").exists()


@pytest.mark.django_db(transaction=True)
def test_bad_values_of_celery_flags_are_refused():
    proc = run_manage("djq_worker", "--burst", "-O", "fastest", check=False)
    assert proc.returncode != 0 and "fastest" in proc.stderr
    proc = run_manage("djq_worker", "--burst", "-P", "rocket", check=False)
    assert proc.returncode != 0 and "rocket" in proc.stderr


# --- 6. beat's "relative", string routes ---------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_relative_beat_entries_and_string_routes_pass_manage_py_check():
    schedule = {"every-minute": {"task": ADD, "schedule": 60.0, "args": [1, 2], "relative": True}}
    env = _settings_env(DJQ_BEAT_SCHEDULE=schedule, DJQ_TASK_ROUTES={ADD: "low-priority"})
    proc = run_manage("check", env_extra=env, check=False)
    assert proc.returncode == 0, _output(proc)
    assert "djq.W011" in _output(proc) and "'relative' is ignored" in _output(proc)
    proc = run_manage("djq_status", env_extra=env, check=False)  # any other command runs too
    assert "djq.E011" not in _output(proc)


@pytest.mark.django_db
def test_a_string_route_is_a_queue_name():
    with override_settings(DJQ_TASK_ROUTES={ADD: "low-priority", "testproject.*": {"queue": "x"}}):
        assert Job.objects.get(id=add.delay(1, 1).id).queue == "low-priority"
        assert Job.objects.get(id=sleep.delay(0).id).queue == "x"
    with override_settings(DJQ_TASK_ROUTES=[{"testproject.demo.tasks.*": "bulk"}]):
        assert Job.objects.get(id=add.delay(1, 1).id).queue == "bulk"


@pytest.mark.django_db
def test_a_relative_entry_is_synced_and_logged(caplog):
    from djq.beat_sync import sync_schedule

    with caplog.at_level("WARNING", logger="djq.beat"):
        report_ = sync_schedule({"rel": {"task": ADD, "schedule": 30.0, "relative": True}})
    assert "rel" in report_["created"]
    assert "'relative' is ignored" in caplog.text


# --- 7. djq_check_celery ---------------------------------------------------------------------
CELERY_SETTINGS_MODULE = """
CELERY_ANNOTATIONS = {"tasks.add": {"rate_limit": "10/s"}, "*": {"time_limit": 30}}
CELERYD_AUTOSCALER = "celery.worker.autoscale:Autoscaler"
CELERYD_STATE_DB = "/var/run/celery/worker.state"
CELERYBEAT_SCHEDULE_FILENAME = "/var/run/celery/celerybeat-schedule"
CELERYD_SOFT_TASK_TIME_LIMIT = 50
CELERY_MESSAGE_COMPRESSION = "gzip"
CELERY_DISABLE_RATE_LIMITS = True
task_annotations = {"tasks.mul": {"ignore_result": True}}
"""


@pytest.mark.django_db(transaction=True)
def test_djq_check_celery_answers_every_setting_of_a_module(tmp_path):
    path = tmp_path / "celeryconfig.py"
    path.write_text(textwrap.dedent(CELERY_SETTINGS_MODULE))
    proc = run_manage("djq_check_celery", str(path), check=False)
    assert proc.returncode == 0, _output(proc)
    assert "(unknown)" not in proc.stdout
    assert "DJQ_DISABLE_RATE_LIMITS = True" in proc.stdout
    assert "DJQ_TASK_SOFT_TIME_LIMIT = 50" in proc.stdout
    assert "'tasks.add': {'rate_limit': '10/s'}" in proc.stdout
    assert "'tasks.mul': {'ignore_result': True}" in proc.stdout
    for name in (
        "CELERYD_AUTOSCALER",
        "CELERYD_STATE_DB",
        "CELERYBEAT_SCHEDULE_FILENAME",
        "CELERY_MESSAGE_COMPRESSION",
    ):
        assert re.search(
            rf"^{name}  \((not needed|not supported|setting|cli)\)$", proc.stdout, re.M
        ), name


#: Celery's setting names, old (upper-case) and new: each must get an answer from djq
CELERY_NAMES = """
accept_content enable_utc imports include timezone beat_max_loop_interval beat_schedule
beat_scheduler beat_schedule_filename beat_sync_every beat_cron_starting_deadline broker_url
broker_read_url broker_write_url broker_transport broker_transport_options
broker_connection_timeout broker_connection_retry broker_connection_retry_on_startup
broker_connection_max_retries broker_channel_error_retry broker_failover_strategy
broker_heartbeat broker_heartbeat_checkrate broker_login_method broker_pool_limit broker_use_ssl
cache_backend cache_backend_options cassandra_table cassandra_servers couchbase_backend_settings
arangodb_backend_settings mongodb_backend_settings event_queue_expires event_queue_ttl
event_queue_prefix event_serializer event_exchange redis_db redis_host redis_max_connections
redis_username redis_password redis_port redis_backend_use_ssl result_backend result_cache_max
result_compression result_exchange result_exchange_type result_expires result_persistent
result_serializer result_extended result_accept_content result_backend_always_retry
result_backend_max_retries result_chord_join_timeout result_chord_retry_interval
database_engine_options database_short_lived_sessions database_table_names
database_table_schemas database_create_tables_at_setup s3_bucket security_certificate
security_cert_store security_key security_key_password security_digest task_acks_late
task_acks_on_failure_or_timeout task_always_eager task_annotations task_compression
task_create_missing_queues task_default_delivery_mode task_default_exchange
task_default_exchange_type task_default_queue task_default_queue_type task_default_rate_limit
task_default_routing_key task_default_priority task_eager_propagates task_ignore_result
task_store_eager_result task_publish_retry task_publish_retry_policy task_queues
task_queue_max_priority task_inherit_parent_priority task_routes task_send_sent_event
task_serializer task_soft_time_limit task_time_limit task_track_started
task_reject_on_worker_lost task_remote_tracebacks task_protocol
task_allow_error_cb_on_chord_header task_store_errors_even_if_ignored worker_agent
worker_autoscaler worker_concurrency worker_consumer worker_direct worker_disable_rate_limits
worker_enable_remote_control worker_hijack_root_logger worker_log_color worker_log_format
worker_lost_wait worker_max_tasks_per_child worker_max_memory_per_child worker_pool
worker_pool_putlocks worker_pool_restarts worker_prefetch_multiplier worker_redirect_stdouts
worker_redirect_stdouts_level worker_send_task_events worker_state_db worker_task_log_format
worker_timer worker_timer_precision worker_proc_alive_timeout
worker_cancel_long_running_tasks_on_connection_loss worker_deduplicate_successful_tasks
worker_detect_quorum_queues worker_eta_task_limit worker_soft_shutdown_timeout
worker_enable_soft_shutdown_on_idle worker_enable_prefetch_count_reduction control_queue_ttl
control_queue_expires control_exchange
BROKER_URL BROKER_TRANSPORT BROKER_HOST BROKER_PORT BROKER_HEARTBEAT BROKER_POOL_LIMIT
CELERY_ACCEPT_CONTENT CELERY_ENABLE_UTC CELERY_IMPORTS CELERY_INCLUDE CELERY_TIMEZONE
CELERYBEAT_MAX_LOOP_INTERVAL CELERYBEAT_SCHEDULE CELERYBEAT_SCHEDULER
CELERYBEAT_SCHEDULE_FILENAME CELERYBEAT_SYNC_EVERY CELERY_CACHE_BACKEND CASSANDRA_SERVERS
CELERY_MONGODB_BACKEND_SETTINGS CELERY_EVENT_QUEUE_EXPIRES CELERY_EVENT_SERIALIZER
CELERY_REDIS_HOST CELERY_RESULT_BACKEND CELERY_MAX_CACHED_RESULTS CELERY_MESSAGE_COMPRESSION
CELERY_RESULT_EXCHANGE CELERY_TASK_RESULT_EXPIRES CELERY_RESULT_PERSISTENT
CELERY_RESULT_SERIALIZER CELERY_RESULT_DBURI CELERY_RESULT_ENGINE_OPTIONS
CELERY_RESULT_DB_SHORT_LIVED_SESSIONS CELERY_SECURITY_KEY CELERY_ACKS_LATE CELERY_ALWAYS_EAGER
CELERY_ANNOTATIONS CELERY_CREATE_MISSING_QUEUES CELERY_DEFAULT_DELIVERY_MODE
CELERY_DEFAULT_EXCHANGE CELERY_DEFAULT_QUEUE CELERY_DEFAULT_RATE_LIMIT
CELERY_DEFAULT_ROUTING_KEY CELERY_EAGER_PROPAGATES_EXCEPTIONS CELERY_IGNORE_RESULT
CELERY_TASK_PUBLISH_RETRY CELERY_TASK_PUBLISH_RETRY_POLICY CELERY_QUEUES CELERY_ROUTES
CELERY_SEND_TASK_SENT_EVENT CELERY_TASK_SERIALIZER CELERYD_TASK_SOFT_TIME_LIMIT
CELERYD_SOFT_TASK_TIME_LIMIT CELERYD_TASK_TIME_LIMIT CELERY_TRACK_STARTED CELERYD_AGENT
CELERYD_AUTOSCALER CELERYD_CONCURRENCY CELERYD_CONSUMER CELERY_WORKER_DIRECT
CELERY_DISABLE_RATE_LIMITS CELERY_ENABLE_REMOTE_CONTROL CELERYD_HIJACK_ROOT_LOGGER
CELERYD_LOG_COLOR CELERYD_LOG_FORMAT CELERYD_WORKER_LOST_WAIT CELERYD_MAX_TASKS_PER_CHILD
CELERYD_POOL CELERYD_POOL_PUTLOCKS CELERYD_POOL_RESTARTS CELERYD_PREFETCH_MULTIPLIER
CELERYD_REDIRECT_STDOUTS CELERYD_REDIRECT_STDOUTS_LEVEL CELERY_SEND_EVENTS CELERYD_STATE_DB
CELERYD_TASK_LOG_FORMAT CELERYD_TIMER CELERYD_TIMER_PRECISION CELERYD_MAX_MEMORY_PER_CHILD
CELERYD_LOG_LEVEL CELERYD_LOG_FILE CELERYBEAT_LOG_LEVEL CELERY_CHORD_PROPAGATES
CELERY_TASK_ALWAYS_EAGER CELERY_TASK_ACKS_LATE CELERY_WORKER_CONCURRENCY
""".split()


@pytest.mark.parametrize("name", CELERY_NAMES)
def test_every_celery_setting_name_gets_an_answer(name, tmp_path):
    path = tmp_path / "s.py"
    path.write_text(f"{name} = 1\n")
    [finding] = check_settings(str(path))
    assert finding.entry is not None, (name, finding.celery)
    assert "check it by hand" not in report(str(path), [finding])


@pytest.mark.django_db(transaction=True)
def test_djq_disable_rate_limits_lets_rate_limited_jobs_run_at_once():
    control.rate_limit(ADD, "1/m")
    results = [add.delay(i, i) for i in range(3)]
    run_manage(
        "djq_worker", "--burst", "-c", "1", env_extra=_settings_env(DJQ_DISABLE_RATE_LIMITS=True)
    )
    assert [r.state for r in results] == [states.SUCCESS] * 3


# --- 8. default worker names -------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_two_workers_without_n_both_start_an_explicit_held_name_is_refused(start_process):
    argv = [sys.executable, str(MANAGE_PY), "djq_worker", "-l", "info", "-c", "1"]
    for name in ("first", "second"):
        start_process(argv, name=name, env=worker_env(), ready_pattern=r"\bready\b")
    names = sorted(Worker.objects.filter(stopped_at__isnull=True).values_list("name", flat=True))
    assert len(names) == 2 and names[0] != names[1]
    assert all(re.fullmatch(r"djq\.\d+@.+", n) for n in names), names
    proc = run_manage("djq_worker", "-n", names[0], "--burst", check=False)
    assert proc.returncode == 2
    assert "give each worker a unique name with -n" in proc.stderr


# --- 9. inspect inside a short timeout ---------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_inspect_answers_inside_a_timeout_shorter_than_the_poll_interval(start_worker):
    worker = start_worker("-c", "1")  # the default poll interval: 1 s
    for _ in range(5):
        replies = control.inspect(timeout=0.5).ping()
        assert replies and replies[worker.nodename] == {"ok": "pong"}, replies
    assert control.ping(timeout=0.5) == [{worker.nodename: {"ok": "pong"}}]


# --- 10. inspect clock, djq_result, djq_call ----------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_inspect_clock_result_and_call_commands(start_worker):
    worker = start_worker("-c", "1", "--poll-interval", "0.1")
    proc = run_manage("djq_inspect", "clock", "-t", "5")
    assert re.search(rf"^-> {re.escape(worker.nodename)}: clock \d+$", proc.stdout, re.M)
    proc = run_manage("djq_call", ADD, "--args", "[2, 3]", "--task-id", "call-1")
    assert proc.stdout.strip() == "call-1"
    proc = run_manage("djq_result", "call-1", "--timeout", "20")
    assert proc.stdout.strip() == "5"
    job_id = run_manage(
        "djq_call", "testproject.demo.tasks.fail", "--kwargs", '{"message": "nope"}'
    ).stdout.strip()
    proc = run_manage("djq_result", job_id, "--timeout", "20", check=False)
    assert proc.returncode == 1 and "FAILURE: ValueError('nope')" in proc.stderr
    proc = run_manage("djq_result", job_id, "--traceback")
    assert proc.stdout.rstrip().endswith("ValueError: nope") and "Traceback" in proc.stdout


@pytest.mark.django_db(transaction=True)
def test_djq_call_options_reach_the_job():
    proc = run_manage(
        "djq_call", ADD, "-a", "[1, 2]", "--queue", "later", "--countdown", "600", "--priority", "7"
    )
    job = Job.objects.get(id=proc.stdout.strip())
    assert (job.queue, job.priority, job.args) == ("later", 7, [1, 2])
    assert (job.run_after - job.created_at).total_seconds() == pytest.approx(600, abs=5)
    proc = run_manage("djq_call", ADD, "--args", "[1, 2]", "--eta", "2031-01-02T03:04:05+00:00")
    assert Job.objects.get(id=proc.stdout.strip()).run_after.year == 2031
    unknown = run_manage("djq_call", "no.such.task", "--kwargs", '{"a": 1}').stdout.strip()
    assert AsyncResult(unknown).name == "no.such.task"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--args", "{}"], "--args must be a JSON list"),
        (["--args", "[1"], "--args must be a JSON list"),
        (["--kwargs", "[]"], "--kwargs must be a JSON object"),
        (["--args", "[1]"], "arguments do not fit"),
        (["--args", "[1, 2]", "--eta", "tomorrow"], "--eta must be an ISO 8601 time"),
        (["--args", "[1, 2]", "--countdown", "soon"], "--countdown"),
        (["--args", "[1, 2]", "--countdown", "1", "--eta", "2030-01-01T00:00:00"], "not both"),
        (["--args", "[1, 2]", "--task-id", "x" * 256], "task_id"),
    ],
)
def test_djq_call_refuses_bad_values_clearly(argv, message):
    proc = run_manage("djq_call", ADD, *argv, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert not Job.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_djq_result_of_an_unknown_or_waiting_job():
    proc = run_manage("djq_result", "never-sent", check=False)
    assert proc.returncode == 1 and "PENDING (no job has this id" in proc.stderr
    send_task(ADD, [1, 1], task_id="waiting-1", countdown=600)
    proc = run_manage("djq_result", "waiting-1", "--json")
    answer = json.loads(proc.stdout)
    assert answer["state"] == "PENDING" and answer["exists"] is True
    proc = run_manage("djq_result", "waiting-1", "--timeout", "-1", check=False)
    assert proc.returncode == 1 and "--timeout" in proc.stderr


# --- 11. the annotation keys in docs/settings.md ------------------------------------------------
def test_docs_name_exactly_the_annotation_keys_djq_reads():
    text = (REPO_ROOT / "docs" / "settings.md").read_text()
    [row] = [line for line in text.splitlines() if line.startswith("| `DJQ_TASK_ANNOTATIONS`")]
    read = row.split("These keys are read:", 1)[1].split("`manage.py check`", 1)[0]
    assert set(re.findall(r"`(\w+)`", read)) == ANNOTATION_KEYS


@pytest.mark.django_db
def test_each_annotation_key_has_an_effect():
    from djq.calling.registry import tasks
    from djq.limits import effective_limits

    given = {
        "time_limit": 9.0,
        "soft_time_limit": 8.0,
        "ignore_result": True,
        "track_started": False,
        "atomic": True,
    }
    with override_settings(DJQ_TASK_ANNOTATIONS={ADD: given}):
        assert resolve_options(add, {}) == given
    limits = effective_limits(tasks, {ADD: {"rate_limit": "2/s", "concurrency_limit": 3}}, [])
    assert limits[ADD] == (2.0, 3)


@pytest.mark.django_db(transaction=True)
def test_an_unread_annotation_key_is_reported_by_check():
    env = _settings_env(DJQ_TASK_ANNOTATIONS={ADD: {"rate_limit": "1/s", "max_retries": 2}})
    proc = run_manage("check", env_extra=env, check=False)
    assert proc.returncode == 0
    assert "djq.W005" in _output(proc) and "max_retries not read" in _output(proc)


@pytest.mark.django_db
def test_apply_async_refuses_a_serializer_other_than_json():
    assert add.apply_async((1, 1), serializer="json", compression="zlib").id
    with pytest.raises(ValueError, match=r"testproject.demo.tasks.add: serializer='pickle'"):
        add.apply_async((1, 1), serializer="pickle")


@pytest.mark.django_db(transaction=True)
def test_a_task_id_given_twice_is_a_clear_error_the_same_call_twice():
    add.apply_async((1, 1), task_id="twice", countdown=60)
    with pytest.raises(ValueError, match=r"testproject.demo.tasks.add: task_id 'twice' is already"):
        add.apply_async((1, 1), task_id="twice")
    proc = run_manage("djq_call", ADD, "--args", "[1, 1]", "--task-id", "twice", check=False)
    assert proc.returncode == 1
    assert "task_id 'twice' is already the id of another job" in proc.stderr
    assert Job.objects.filter(id="twice").count() == 1
