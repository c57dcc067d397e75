from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0006_client_replies')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ReminderDigest',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('firm', fields.ForeignKeyField('models.Firm', source_field='firm_id', db_constraint=True, to_field='id', related_name='digests', on_delete=OnDelete.CASCADE)),
                ('staff_email', fields.CharField(max_length=254)),
                ('day', fields.DateField()),
                ('sent_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('through_event_id', fields.IntField(default=0)),
            ],
            options={'table': 'reminder_digest', 'app': 'models', 'unique_together': (('firm', 'staff_email', 'day'),), 'pk_attr': 'id', 'table_description': 'The one mail a day that tells a staff member which of their requests'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Firm',
            name='reminder_after',
            field=fields.JSONField(default=list, db_default='[]', encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
        ops.AddField(
            model_name='Firm',
            name='reminder_before_expiry',
            field=fields.JSONField(default=list, db_default='[]', encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
        ops.AddField(
            model_name='PaymentRequest',
            name='expiry_warned_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='PaymentRequest',
            name='reminded_through',
            field=fields.DateField(null=True),
        ),
    ]
