"""The worker's roles, each a small module with one job, composed by ``djq.worker.Worker``.

- ``producer``: claims due jobs ahead of demand into the worker's reserve (RESERVED);
- ``completer``: records outcomes and STARTED marks in batches as they come (no fixed delay);
- ``rescuer``: maintenance (expired leases, the statistics rollup, event pruning), run by one
  elected worker at a time under the database lease ``djq.maintenance``.

A role imports only downwards (models, conf, store, leases ...), never the worker.
"""
