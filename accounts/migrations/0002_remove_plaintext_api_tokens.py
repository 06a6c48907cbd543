"""Remove the API tokens django-rest-framework's ``authtoken`` app stored in plaintext.

API tokens are now django-rest-knox's, kept only as hashes. The old keys cannot be hashed back
into the new scheme (the new tokens are longer and expire), and a table of working plaintext
keys must not outlive the switch: the table is dropped, and the ``authtoken`` migration records
with it, so that installing that app again would start from an empty table. Clients obtain a
new token from ``POST /api/auth/token/``. A database that never had the table is untouched.
"""

from django.db import migrations
from django.db.migrations.recorder import MigrationRecorder

TABLE = "authtoken_token"


def drop_plaintext_tokens(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        tables = connection.introspection.table_names(cursor)
    if TABLE in tables:
        schema_editor.execute(f"DROP TABLE {schema_editor.quote_name(TABLE)}")
    MigrationRecorder(connection).migration_qs.filter(app="authtoken").delete()


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(drop_plaintext_tokens, migrations.RunPython.noop, elidable=False),
    ]
