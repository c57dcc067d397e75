from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0001_1_fees_customers_documents')]

    initial = False

    operations = [
        ops.CreateModel(
            name='AcceptedMessageId',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('firm_domain', fields.CharField(max_length=253)),
                ('digest', fields.CharField(max_length=64)),
                ('accepted_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'accepted_message_id', 'app': 'models', 'unique_together': (('firm_domain', 'digest'),), 'pk_attr': 'id', 'table_description': "The Message-IDs of signed messages a firm's gateway accepted: a"},
            bases=['Model'],
        ),
    ]
