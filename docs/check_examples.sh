#!/usr/bin/env bash
# Run the examples of README.md and docs/*.md, so that the documentation stays true to the code.
#
#   PYTHON=.venv/bin/python docs/check_examples.sh
#
# On a throwaway SQLite database (DATABASE_URL points into a temp dir; nothing else is touched):
#   1. migrate and `manage.py check`;
#   2. start a real worker (docs-check@<host>) in the background and run every ```pycon block of
#      the pages as a doctest against it (blocks of one page share their names, in page order);
#      every ```python block is compiled (syntax only);
#   3. run the shell commands the pages show (djq_worker --burst, djq_purge …), the worker-name
#      collision, SIGHUP restart and the cold shutdown described in docs/worker.md.
# docs/periodic-jobs.md is not checked here (it has its own examples).
# Exits non-zero on the first failure; tests/system/test_docs.py runs it in the SQLite test pass.
set -euo pipefail

PYTHON=${PYTHON:-python}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/djq-docs-check.XXXXXX")
WORKER_PID=""
cleanup() {
    if [[ -n $WORKER_PID ]] && kill -0 "$WORKER_PID" 2>/dev/null; then
        kill -QUIT "$WORKER_PID" 2>/dev/null || true
        wait "$WORKER_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

export DATABASE_URL="sqlite:///$TMP/docs.sqlite3"
export DJANGO_SETTINGS_MODULE=testproject.settings
export PYTHONUNBUFFERED=1
unset DJQ_PG_STATE DJQ_PG_CTL DJQ_PG_DATA DJQ_PG_SCRIPT

manage() { "$PYTHON" manage.py "$@"; }
step() { echo "== $*"; }
fail() { echo "docs/check_examples.sh: FAILED: $*" >&2; exit 1; }

# wait_for_line FILE TEXT [SECONDS]: until TEXT appears in FILE
wait_for_line() {
    local deadline=$((SECONDS + ${3:-60}))
    until grep -qF -- "$2" "$1" 2>/dev/null; do
        ((SECONDS < deadline)) || { cat "$1" >&2; fail "no '$2' in $1"; }
        sleep 0.1
    done
}

# start_worker LOG ARGS...: a background worker; sets WORKER_PID, waits for "ready."
start_worker() {
    local log=$1
    shift
    "$PYTHON" manage.py djq_worker "$@" >"$log" 2>&1 &  # not through manage(): $! is the worker
    WORKER_PID=$!
    wait_for_line "$log" " ready."
}

stop_worker() {  # stop_worker SIGNAL: send it, wait, expect exit 0
    kill "-$1" "$WORKER_PID"
    local rc=0
    wait "$WORKER_PID" || rc=$?
    WORKER_PID=""
    [[ $rc == 0 ]] || fail "worker exited with $rc after SIG$1"
}

# --- 1. set up (docs/index.md) -------------------------------------------------------------------
step "migrate, check"
manage migrate --noinput -v 0
manage check >/dev/null

# --- 2. the pycon examples, against a live worker --------------------------------------------------
step "doctests of README.md and docs/*.md against a worker"
start_worker "$TMP/worker.log" -n docs-check@%h -c 2 --poll-interval 0.1 -l info

"$PYTHON" - README.md docs/index.md docs/tasks.md docs/calling.md docs/results.md \
    docs/worker.md docs/settings.md docs/batches.md <<'PY'
import doctest
import re
import sys

import django

django.setup()
from django.conf import settings  # noqa: E402

settings.DJQ_RESULT_POLL_INTERVAL = 0.05  # faster get() on SQLite; results are the same

FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```\s*$", re.M | re.S)
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
parser = doctest.DocTestParser()
failed = tried = 0
for path in sys.argv[1:]:
    text = open(path, encoding="utf-8").read()
    globs = {"__name__": "docs_examples"}
    for match in FENCE.finditer(text):
        lang, body = match.group(1), match.group(2)
        lineno = text.count("\n", 0, match.start(2))
        if lang == "python":
            try:
                compile(body, f"{path}:{lineno + 1}", "exec")
            except SyntaxError as exc:
                print(f"{path}:{lineno + 1}: python block does not compile: {exc}")
                failed += 1
        elif lang == "pycon":
            test = parser.get_doctest(body, globs, f"{path}:{lineno + 1}", path, lineno)
            runner = doctest.DocTestRunner(optionflags=FLAGS)
            result = runner.run(test, out=sys.stdout.write, clear_globs=False)
            globs = test.globs  # (DocTest copies its globs) the next block sees these names
            failed += result.failed
            tried += result.attempted
print(f"{tried} examples, {failed} failed")
sys.exit(1 if failed or not tried else 0)
PY

step "worker log lines shown in docs/worker.md"
for line in " received" "] succeeded in " "] raised unexpected: ValueError('nope')" \
    "] retry: Retry in 0.1s" "] ignored" "] expired: revoked" \
    "Hard time limit (0.5s) exceeded for testproject.demo.tasks.sleep["; do
    grep -qF -- "$line" "$TMP/worker.log" || fail "no '$line' in the worker log"
done

step "a second worker with a live name refuses to start (exit 2)"
rc=0
manage djq_worker -n docs-check@%h --burst >"$TMP/dup.log" 2>&1 || rc=$?
[[ $rc == 2 ]] || fail "duplicate worker name: exit $rc, expected 2"
grep -qF "give each worker a unique name with -n" "$TMP/dup.log" || fail "no duplicate-name error"

step "SIGHUP: restart with the same arguments"
kill -HUP "$WORKER_PID"
wait_for_line "$TMP/worker.log" "restarting (SIGHUP)"
deadline=$((SECONDS + 60))
until [[ $(grep -cF " ready." "$TMP/worker.log") -ge 2 ]]; do
    ((SECONDS < deadline)) || fail "the worker did not come back after SIGHUP"
    sleep 0.1
done

step "SIGQUIT: cold shutdown fails the running (non acks_late) job with WorkerLostError"
job=$(manage shell -v 0 -c '
from testproject.demo.tasks import sleep
print(sleep.delay(30).id)')
manage shell -v 0 -c "
import time
from djq import AsyncResult
r = AsyncResult('$job')
deadline = time.monotonic() + 30
while r.state != 'STARTED':
    assert time.monotonic() < deadline, 'the job did not start'
    time.sleep(0.05)"
sleep 0.5
stop_worker QUIT
manage shell -v 0 -c "
from djq import AsyncResult
r = AsyncResult('$job')
assert r.state == 'FAILURE', r.state
assert 'cold shutdown' in str(r.result), repr(r.result)"
grep -qF "cold shutdown" "$TMP/worker.log" || fail "no 'cold shutdown' in the worker log"

# --- 3. the commands shown in the pages ---------------------------------------------------------
step "docs/worker.md: --burst and the example command lines (with --burst added)"
job=$(manage shell -v 0 -c '
from testproject.demo.tasks import add
print(add.delay(2, 2).id)')
manage djq_worker --burst -Q default -c 2 -l warning >/dev/null
manage shell -v 0 -c "
from djq import AsyncResult
assert AsyncResult('$job').get(timeout=1) == 4"
manage djq_worker -l info --burst >/dev/null 2>&1
manage djq_worker -Q default,email -c 4 -n w1@%h --burst >/dev/null 2>&1
manage djq_worker -n fast@%h -Q default -c 8 --prefetch-multiplier 16 --burst >/dev/null 2>&1
manage djq_worker -n slow@%h -Q reports -c 2 --prefetch-multiplier 1 --burst >/dev/null 2>&1

step "SIGTERM: warm shutdown lets the running job finish"
# (4 s: long enough that the next shell, slow to start on a busy machine, sees it running)
job=$(manage shell -v 0 -c '
from testproject.demo.tasks import sleep
print(sleep.delay(4).id)')
start_worker "$TMP/warm.log" -n warm@%h -c 1 --poll-interval 0.1
manage shell -v 0 -c "
import time
from djq import AsyncResult
r = AsyncResult('$job')
deadline = time.monotonic() + 30
while r.state != 'STARTED':
    assert time.monotonic() < deadline, 'the job did not start'
    time.sleep(0.05)"
stop_worker TERM
manage shell -v 0 -c "
from djq import AsyncResult
assert AsyncResult('$job').state == 'SUCCESS'"
grep -qF "warm shutdown" "$TMP/warm.log" || fail "no 'warm shutdown' in the log"

step "docs/results.md: djq_purge"
manage shell -v 0 -c '
from testproject.demo.tasks import add
add.apply_async((1, 1), queue="email", countdown=3600)'
manage djq_purge | grep -q "^Removed .* finished job(s) older than 86400s.$"
manage djq_purge --older-than 3600 >/dev/null
manage djq_purge --older-than 0 --waiting -Q email | tee "$TMP/purge.out"
grep -q "^Removed [1-9][0-9]* waiting job(s) of queue 'email'.$" "$TMP/purge.out" \
    || fail "djq_purge --waiting -Q email removed nothing"

echo "docs/check_examples.sh: all examples passed"
