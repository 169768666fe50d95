"""Running jobs: the execute steps, eager mode, retry policy and the pools."""
