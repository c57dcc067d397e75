from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0007_reminders')]

    initial = False

    operations = [
        ops.AddField(
            model_name='InboundMessage',
            name='body_blob',
            field=fields.CharField(default='', db_default='', max_length=100),
        ),
        ops.AddField(
            model_name='InboundMessage',
            name='body_salt',
            field=fields.BinaryField(null=True),
        ),
    ]
