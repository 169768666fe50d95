"""Django signals with Celery's names and arguments.

Task signals are sent in the process that runs the task (a pool child, a pool thread, or the
caller for eager runs); worker signals in the worker's main process.
"""

from django.dispatch import Signal

#: before a job is inserted: sender=task name, body=the job row, routing_key=its queue
before_task_publish = Signal()
#: after a job is inserted (in the caller's transaction): sender=task name, body, routing_key
after_task_publish = Signal()
#: sender=task; task_id, task, args, kwargs
task_prerun = Signal()
#: sender=task; task_id, task, args, kwargs, retval, state
task_postrun = Signal()
#: sender=task; result
task_success = Signal()
#: sender=task; task_id, exception, args, kwargs, traceback, einfo
task_failure = Signal()
#: sender=task; request, reason, einfo
task_retry = Signal()
#: sender=task name; request (the job id), terminated, signum, expired
task_revoked = Signal()
#: sender=the worker; sent once it is ready to take jobs
worker_ready = Signal()
#: sender=the worker; sent when it has stopped
worker_shutdown = Signal()
#: sender=None; sent in each new pool child process after fork
worker_process_init = Signal()
#: sender=EventDispatcher; event (a dict with Celery's fields): sent in the process that published
#: the monitoring event, once it is written (djq.events; workers with -E)
event_sent = Signal()
#: sender=Receiver; event: sent in a process reading events (djq_events, djq.events.Receiver)
event_received = Signal()
