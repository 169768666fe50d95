"""The admin's helpers: controls, search, monitor, work-flow tree, charts,
history and the metrics views (``djq.admin`` registers the pages)."""
