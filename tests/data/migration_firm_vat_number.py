"""A later migration, as a developer would write one: a column added to a
table that has rows, and filled in for them. A NOT NULL column needs
db_default= (a default in the database) to be added to a table with rows:
Tortoise's default= is applied by Python only. tests/test_migrations.py
puts it after the product's last migration (LAST_MIGRATION below)."""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


async def fill_in(apps, schema_editor) -> None:
    await schema_editor.client.execute_script("UPDATE firm SET vat_number = 'VAT-' || domain")


class Migration(migrations.Migration):
    dependencies = [("models", "LAST_MIGRATION")]

    operations = [
        ops.AddField(model_name="Firm", name="vat_number", field=fields.CharField(max_length=40, default="", db_default="")),
        ops.RunPython(fill_in),
    ]
