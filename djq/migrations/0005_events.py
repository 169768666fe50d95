"""The monitoring events table (djq.events): a batch of events a row.

On PostgreSQL the batches are stored uncompressed (STORAGE EXTERNAL): a row is written once per
turn of a publishing worker's loop and read once or twice before it is pruned, so compressing
it would cost the worker's database CPU for nothing.
"""

from django.db import migrations, models

EXTERNAL = "ALTER TABLE djq_event_batch ALTER COLUMN payload SET STORAGE EXTERNAL"
EXTENDED = "ALTER TABLE djq_event_batch ALTER COLUMN payload SET STORAGE EXTENDED"


def _run(sql):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return apply


class Migration(migrations.Migration):
    dependencies = [
        ("djq", "0004_reserved"),
    ]

    operations = [
        migrations.CreateModel(
            name="EventBatch",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("created_at", models.DateTimeField()),
                ("hostname", models.CharField(max_length=255)),
                ("count", models.PositiveIntegerField()),
                (
                    "payload",
                    models.TextField(
                        help_text='JSON: {"sender": {hostname, pid, utcoffset}, "events"}'
                    ),
                ),
            ],
            options={
                "db_table": "djq_event_batch",
                "indexes": [models.Index(fields=["created_at"], name="djq_event_created_idx")],
            },
        ),
        migrations.RunPython(_run(EXTERNAL), _run(EXTENDED)),
    ]
