"""The fault campaign: djq's delivery rules under kill -9, database crashes, frozen workers,
network partitions, bad input and volume (``make chaos``; docs/chaos.md).

    python -m chaos [--short] [--only NAME,NAME] [--lease SECONDS]

Each scenario prints one line ``name: PASS|FAIL figures``; the exit status is 1 if any failed.
"""
