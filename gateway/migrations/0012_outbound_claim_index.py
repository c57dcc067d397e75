"""The outbox claim's index (models.OutboundMessage.Meta): the claim picks
the due messages from the index alone, in its order, without reading the
queued rows (their sealed messages)."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0011_inbound_raw')]

    initial = False

    operations = [
        ops.AddIndex(
            model_name='OutboundMessage',
            index=Index(fields=['status', 'next_attempt_at', 'id', 'lease_until'], name='outbound_message_claim'),
        ),
    ]
