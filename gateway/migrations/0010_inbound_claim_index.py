"""The inbound claim's index (models.InboundMessage.Meta): the claim picks
the oldest claimable message from the index alone, without reading the
queued rows (their sealed messages)."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0009_outbound_returns')]

    initial = False

    operations = [
        ops.AddIndex(
            model_name='InboundMessage',
            index=Index(fields=['status', 'received_at', 'lease_until', 'id'], name='inbound_message_claim'),
        ),
    ]
