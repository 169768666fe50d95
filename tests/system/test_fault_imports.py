"""No module named by job data is ever imported (issue 12, defect 3).

A probe module writes a file when it is imported. Job rows name it — as a stored exception's
``exc_module`` (read by ``AsyncResult.get()`` in the caller and by new-style errbacks in the
worker) and as a ``django.tasks`` header path — and the file never appears: the exception comes
back as a generic one of the same name and message, the Django task fails saying why. Importing
the probe by hand does write the file, so the test would see an import.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.utils import timezone

from djq import AsyncResult, states
from djq.exceptions import WorkerLostError
from djq.models import Job
from testproject.demo.tasks import add, on_error_full
from tests.faults import good_columns, insert_raw
from tests.helpers import REPO_ROOT


@dataclass
class Probe:
    module: str
    directory: Path
    marker: Path

    def exception(self, message: str = "from a row") -> dict:
        return {"exc_type": "Boom", "exc_module": self.module, "exc_message": [message]}


@pytest.fixture
def probe(tmp_path, monkeypatch):
    directory, marker = tmp_path / "probe", tmp_path / "imported.txt"
    directory.mkdir()
    module = f"djq_probe_{os.getpid()}_{abs(hash(str(tmp_path))) % 10**8}"
    (directory / f"{module}.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('imported')\n"
        "class Boom(Exception):\n    pass\ntask = None\n"
    )
    monkeypatch.syspath_prepend(str(directory))
    yield Probe(module, directory, marker)
    sys.modules.pop(module, None)


def _proves_the_probe_works(probe: Probe) -> None:
    assert not probe.marker.exists()
    importlib.import_module(probe.module)
    assert probe.marker.exists()


@pytest.mark.django_db
def test_get_rebuilds_a_stored_exception_without_importing_its_module(probe):
    result = add.delay(1, 2)
    Job.objects.filter(id=result.id).update(
        state=states.FAILURE, finished_at=timezone.now(), result=probe.exception()
    )
    with pytest.raises(Exception) as raised:
        result.get(timeout=1)
    assert type(raised.value).__name__ == "Boom" and str(raised.value) == "from a row"
    assert type(result.result).__name__ == "Boom"
    assert probe.module not in sys.modules and not probe.marker.exists()
    _proves_the_probe_works(probe)


@pytest.mark.django_db
def test_an_exception_of_an_imported_module_keeps_its_type():
    result = add.delay(1, 2)
    stored = {
        "exc_type": "WorkerLostError",
        "exc_module": "djq.exceptions",
        "exc_message": ["gone"],
    }
    Job.objects.filter(id=result.id).update(
        state=states.FAILURE, finished_at=timezone.now(), result=stored
    )
    with pytest.raises(WorkerLostError, match="gone"):
        result.get(timeout=1)


def _probe_env(probe: Probe) -> dict:
    return {"PYTHONPATH": os.pathsep.join([str(probe.directory), str(REPO_ROOT)])}


@pytest.mark.django_db(transaction=True)
def test_a_worker_gives_an_errback_the_exception_without_importing_its_module(start_worker, probe):
    job_id = insert_raw(
        {
            **good_columns("", ""),
            "name": on_error_full.name,
            "args": json.dumps(
                [
                    {"id": "failed-job", "task": "some.task"},
                    probe.exception(),
                    "Traceback (most recent call last): ...",
                ]
            ),
            "options": json.dumps({"errback": True}),
        }
    )
    start_worker("-c", "1", env_extra=_probe_env(probe))
    assert AsyncResult(job_id).get(timeout=30) == {
        "id": "failed-job",
        "task": "some.task",
        "exc": "Boom",
        "message": "from a row",
        "has_traceback": True,
    }
    assert not probe.marker.exists()
    _proves_the_probe_works(probe)


@pytest.mark.django_db(transaction=True)
def test_a_django_task_header_never_imports_the_module_it_names(start_worker, probe):
    pytest.importorskip("django.tasks")
    from djq.contrib.django_tasks import HEADER, TASK_NAME

    header = {
        "path": f"{probe.module}.task",
        "backend": "default",
        "priority": 0,
        "queue_name": "default",
        "run_after": None,
        "takes_context": False,
    }
    job_id = insert_raw(
        {
            **good_columns("", ""),
            "name": TASK_NAME,
            "args": "[]",
            "options": json.dumps({"headers": {HEADER: header}}),
        }
    )
    start_worker("-c", "1", env_extra=_probe_env(probe))
    with pytest.raises(ValueError, match="is not imported"):
        AsyncResult(job_id).get(timeout=30)
    assert not probe.marker.exists()
    _proves_the_probe_works(probe)
