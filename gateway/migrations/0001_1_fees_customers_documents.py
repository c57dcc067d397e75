"""What this version added to the schema of the last release (3a04bb6)
before migrations came in: issue 12's card-fee terms, settlement currency
and QuickBooks customers, issue 17's blob store and retention columns.

Named 0001_1 rather than renumbering 0002..0004, whose names other branches
name in their own migrations' dependencies. Each NOT NULL column has a
db_default, so that the rows a release database already has get a value;
existing sealed files get blob "" (= still in sealed_chunk rows, which
`clienttrack blobs migrate` moves)."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='CustomerName',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('firm', fields.ForeignKeyField('models.Firm', source_field='firm_id', db_constraint=True, to_field='id', related_name='customers', on_delete=OnDelete.CASCADE)),
                ('client_email', fields.CharField(max_length=254)),
                ('name', fields.CharField(max_length=41)),
            ],
            options={'table': 'customer_name', 'app': 'models', 'unique_together': (('firm', 'client_email'),), 'pk_attr': 'id', 'table_description': "A firm's client as its accounting program names the customer (the"},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Firm',
            name='card_fee_fixed_minor',
            field=fields.BigIntField(null=True),
        ),
        ops.AddField(
            model_name='Firm',
            name='card_fee_rate',
            field=fields.CharField(default='', db_default='', max_length=12),
        ),
        ops.AddField(
            model_name='Firm',
            name='province',
            field=fields.CharField(default='', db_default='', max_length=3),
        ),
        ops.AddField(
            model_name='Firm',
            name='retention_days',
            field=fields.IntField(default=90, db_default=90),
        ),
        ops.AddField(
            model_name='Firm',
            name='surcharge_notice_date',
            field=fields.DateField(null=True),
        ),
        ops.AddField(
            model_name='PaymentRequest',
            name='cancelled_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='PaymentRequest',
            name='customer',
            field=fields.CharField(default='', db_default='', max_length=41),
        ),
        ops.AddField(
            model_name='PaymentRequest',
            name='documents_removed_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='PaymentRequest',
            name='exchange_rate',
            field=fields.CharField(default='', db_default='', max_length=32),
        ),
        ops.AddField(
            model_name='PaymentRequest',
            name='settlement_currency',
            field=fields.CharField(default='', db_default='', max_length=3),
        ),
        ops.AddField(
            model_name='PaymentRequest',
            name='settlement_net_minor',
            field=fields.BigIntField(null=True),
        ),
        ops.AlterModelOptions(
            name='SealedChunk',
            options={'table': 'sealed_chunk', 'app': 'models', 'unique_together': (('file', 'index'),), 'pk_attr': 'id', 'table_description': 'A sealed chunk kept in the database: how files were stored before the'},
        ),
        ops.AddField(
            model_name='SealedFile',
            name='blob',
            field=fields.CharField(default='', db_default='', max_length=100),
        ),
    ]
