"""Task ids become text: any non-empty string up to 255 characters (Celery's ``task_id=`` idiom).

Every id-carrying column changes from UUID to varchar(255). PostgreSQL casts the values
(``uuid::varchar`` is the dashed form ``str(uuid)`` gives, so existing ids keep their text);
SQLite stored UUIDs as 32 hex digits, which are rewritten to the dashed form here. Django adds a
``varchar_pattern_ops`` ("_like") index to a text primary key on PostgreSQL; ids are never
searched with LIKE, so those indexes are dropped (each would cost every enqueue a write).
"""

from django.db import migrations, models

import djq.models

#: (table, column) of every id column; SQLite's 32-hex values are given their dashes
ID_COLUMNS = [
    ("djq_job", "id"), ("djq_job", "parent_id"), ("djq_job", "root_id"), ("djq_job", "group_id"),
    ("djq_group", "id"), ("djq_periodic_tick", "job_id"), ("djq_unique_lock", "job_id"),
]  # fmt: skip
_DASHED = (
    "lower(substr({c},1,8)||'-'||substr({c},9,4)||'-'||substr({c},13,4)||'-'||substr({c},17,4)"
    "||'-'||substr({c},21,12))"
)


def _dash_sqlite_uuids(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    for table, column in ID_COLUMNS:
        schema_editor.execute(
            f"UPDATE {table} SET {column} = {_DASHED.format(c=column)} "
            f"WHERE length({column}) = 32 AND {column} NOT GLOB '*[^0-9a-fA-F]*'"
        )


def _drop_like_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename IN ('djq_job', 'djq_group') "
            "AND indexname LIKE %s",
            ["%\\_like"],
        )
        names = [row[0] for row in cursor.fetchall()]
    for name in names:
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


class Migration(migrations.Migration):
    dependencies = [
        ("djq", "0002_job_storage"),
    ]

    operations = [
        migrations.AlterField(
            model_name="group",
            name="id",
            field=models.CharField(max_length=255, primary_key=True, serialize=False),
        ),
        migrations.AlterField(
            model_name="job",
            name="group_id",
            field=models.CharField(blank=True, max_length=255, null=True),
        ),
        migrations.AlterField(
            model_name="job",
            name="id",
            field=models.CharField(
                default=djq.models._new_id,
                editable=False,
                max_length=255,
                primary_key=True,
                serialize=False,
            ),
        ),
        migrations.AlterField(
            model_name="job",
            name="parent_id",
            field=models.CharField(blank=True, max_length=255, null=True),
        ),
        migrations.AlterField(
            model_name="job",
            name="root_id",
            field=models.CharField(blank=True, max_length=255, null=True),
        ),
        migrations.AlterField(
            model_name="periodictick",
            name="job_id",
            field=models.CharField(max_length=255),
        ),
        migrations.AlterField(
            model_name="uniquelock",
            name="job_id",
            field=models.CharField(max_length=255),
        ),
        migrations.RunPython(_dash_sqlite_uuids, migrations.RunPython.noop),
        migrations.RunPython(_drop_like_indexes, migrations.RunPython.noop),
    ]
