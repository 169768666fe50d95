"""PostgreSQL storage settings for the jobs table (no-op elsewhere).

fillfactor leaves room in each page so that state updates are HOT (no index writes); the
autovacuum thresholds are per-table so a busy queue is vacuumed long before bloat builds up.
Column defaults (by the database clock) let ``enqueue_many`` COPY rows without computing times:
Django's model state does not know them, and every ORM insert still gives explicit values.
"""

from django.db import migrations

STORAGE = (
    "ALTER TABLE djq_job SET (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.01, "
    "autovacuum_analyze_scale_factor = 0.02, autovacuum_vacuum_cost_delay = 1); "
    "ALTER TABLE djq_job ALTER COLUMN run_after SET DEFAULT clock_timestamp(), "
    "ALTER COLUMN created_at SET DEFAULT clock_timestamp(), "
    "ALTER COLUMN history SET DEFAULT "
    "jsonb_build_array(jsonb_build_array('PENDING', clock_timestamp(), ''))"
)
RESET = (
    "ALTER TABLE djq_job RESET (fillfactor, autovacuum_vacuum_scale_factor, "
    "autovacuum_analyze_scale_factor, autovacuum_vacuum_cost_delay); "
    "ALTER TABLE djq_job ALTER COLUMN run_after DROP DEFAULT, "
    "ALTER COLUMN created_at DROP DEFAULT, ALTER COLUMN history DROP DEFAULT"
)


def _run(sql):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return apply


class Migration(migrations.Migration):
    dependencies = [("djq", "0001_initial")]
    operations = [migrations.RunPython(_run(STORAGE), _run(RESET))]
