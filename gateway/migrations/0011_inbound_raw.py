"""The queued message's sealed copy in a table of its own (models.InboundRaw):
the claim and the finish update the queue row, and SQLite rewrote the whole
message with it each time. The copies still held (queued, being processed,
quarantined) move over; a done message has none."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.migrations.schema_editor.base import BaseSchemaEditor


class DropColumn(ops.RemoveField):
    """RemoveField as ALTER TABLE ... DROP COLUMN on every database (SQLite
    has it since 3.35): Tortoise's SQLite editor copies the table into a new
    one instead, and the copy has none of the table's indexes (the claim's,
    models.CLAIM_INDEX, among them)."""

    async def database_forward(self, app_label, old_state, new_state, state_editor=None) -> None:
        if state_editor:
            model = old_state.apps.get_model(f"{app_label}.{self.model_name}")
            await BaseSchemaEditor.remove_field(state_editor, model, model._meta.fields_map[self.name])


class Migration(migrations.Migration):
    dependencies = [('models', '0010_inbound_claim_index')]

    initial = False

    operations = [
        ops.CreateModel(
            name='InboundRaw',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=32)),
                ('sealed_raw', fields.BinaryField()),
            ],
            options={'table': 'inbound_raw', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A queued message as received, sealed under the master key (its'},
            bases=['Model'],
        ),
        ops.RunSQL(
            "INSERT INTO inbound_raw (id, sealed_raw)"
            " SELECT id, sealed_raw FROM inbound_message WHERE sealed_raw IS NOT NULL",
            reverse_sql="UPDATE inbound_message SET sealed_raw ="
                        " (SELECT sealed_raw FROM inbound_raw WHERE inbound_raw.id = inbound_message.id)"),
        DropColumn(model_name='InboundMessage', name='sealed_raw'),
    ]
