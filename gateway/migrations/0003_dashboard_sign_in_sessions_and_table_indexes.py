from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0002_accepted_message_id')]

    initial = False

    operations = [
        ops.CreateModel(
            name='StaffSession',
            fields=[
                ('id_hash', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ('staff', fields.ForeignKeyField('models.Staff', source_field='staff_id', db_constraint=True, to_field='id', related_name='sessions', on_delete=OnDelete.CASCADE)),
                ('firm', fields.ForeignKeyField('models.Firm', source_field='firm_id', db_constraint=True, to_field='id', related_name='staff_sessions', on_delete=OnDelete.CASCADE)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('last_seen_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('flash', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
            ],
            options={'table': 'staff_session', 'app': 'models', 'pk_attr': 'id_hash', 'table_description': 'A signed-in staff member in one browser (web/staff/sessions.py). The'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='StaffSignIn',
            fields=[
                ('token_hash', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ('staff', fields.ForeignKeyField('models.Staff', source_field='staff_id', db_constraint=True, to_field='id', related_name='sign_ins', on_delete=OnDelete.CASCADE)),
                ('firm', fields.ForeignKeyField('models.Firm', source_field='firm_id', db_constraint=True, to_field='id', related_name='sign_ins', on_delete=OnDelete.CASCADE)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'staff_sign_in', 'app': 'models', 'pk_attr': 'token_hash', 'table_description': "A one-time link to the firm's dashboard (gateway/vault/signin.py):"},
            bases=['Model'],
        ),
        ops.AddIndex(
            model_name='PaymentRequest',
            index=Index(fields=['firm_id', 'created_at', 'id']),
        ),
        ops.AddIndex(
            model_name='PaymentRequest',
            index=Index(fields=['firm_id', 'status', 'created_at', 'id']),
        ),
        ops.AddIndex(
            model_name='PaymentRequest',
            index=Index(fields=['firm_id', 'sender', 'created_at', 'id']),
        ),
        ops.AddIndex(
            model_name='PaymentRequest',
            index=Index(fields=['firm_id', 'sender', 'status', 'created_at', 'id']),
        ),
    ]
