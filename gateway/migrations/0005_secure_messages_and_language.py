from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from gateway.core.models import RequestKind
from json import dumps, loads
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0004_queue_lease_owners')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Firm',
            name='language',
            field=fields.CharField(default='', db_default='', max_length=5),
        ),
        ops.AddField(
            model_name='PaymentRequest',
            name='kind',
            field=fields.CharEnumField(default=RequestKind.PAYMENT, description='PAYMENT: payment\nMESSAGE: message', db_default='payment', enum_type=RequestKind, max_length=10),
        ),
        ops.AddField(
            model_name='PaymentRequest',
            name='lang',
            field=fields.CharField(default='', db_default='', max_length=5),
        ),
        ops.AddField(
            model_name='PaymentRequest',
            name='remind',
            field=fields.BooleanField(default=True, db_default=True),
        ),
        ops.AddField(
            model_name='PaymentRequest',
            name='upload_items',
            field=fields.JSONField(default=list, db_default='[]', encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
    ]
