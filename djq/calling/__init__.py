"""Calling tasks: the registry, enqueue (send_task, enqueue_many), results and
the request context. Imports the store and below; canvas sits above."""
