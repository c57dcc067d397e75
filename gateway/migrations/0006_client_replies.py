from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0005_secure_messages_and_language')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ClientReply',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('request', fields.ForeignKeyField('models.PaymentRequest', source_field='request_id', db_constraint=True, to_field='id', related_name='replies', on_delete=OnDelete.CASCADE)),
                ('number', fields.IntField()),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('file_count', fields.IntField(default=0)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('read_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'client_reply', 'app': 'models', 'unique_together': (('request', 'number'),), 'pk_attr': 'id', 'table_description': "A reply the client sent from the request's page (gateway/replies):"},
            bases=['Model'],
        ),
        ops.AlterModelOptions(
            name='SealedFile',
            options={'table': 'sealed_file', 'app': 'models', 'unique_together': (('request', 'position'),), 'pk_attr': 'id', 'table_description': "A text (is_body: the staff's message, or a client's reply) or a"},
        ),
        ops.AddField(
            model_name='SealedFile',
            name='reply',
            field=fields.ForeignKeyField('models.ClientReply', source_field='reply_id', null=True, db_constraint=True, to_field='id', related_name='sealed_files', on_delete=OnDelete.CASCADE),
        ),
        ops.AddField(
            model_name='SealedFile',
            name='upload_item',
            field=fields.IntField(null=True),
        ),
    ]
