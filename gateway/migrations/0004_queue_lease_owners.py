from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0003_dashboard_sign_in_sessions_and_table_indexes')]

    initial = False

    operations = [
        ops.AddField(
            model_name='InboundMessage',
            name='lease_owner',
            field=fields.CharField(default='', db_default='', max_length=200),
        ),
        ops.AddField(
            model_name='OutboundMessage',
            name='lease_owner',
            field=fields.CharField(default='', db_default='', max_length=200),
        ),
        ops.AddField(
            model_name='OutboundMessage',
            name='lease_until',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
    ]
