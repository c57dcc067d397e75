"""Bounces: how many reports an outbound message's bounce address has taken
(admission/bounces.py caps them), and the request status `bounced`."""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops

from gateway.core.models import RequestStatus


class AlterDescriptionOnly(ops.AlterField):
    """A change to a field's description alone (Tortoise writes an enum's
    members into it): the migration state follows, the database is left as
    it is. SQLite keeps no description anywhere, and Tortoise's SQLite
    AlterField rebuilds the table without its indexes and unique
    constraints (tortoise-orm 1.1.9); on PostgreSQL the column's comment
    keeps the older list of statuses, which nothing reads."""

    async def database_forward(self, *args, **kwargs) -> None:
        return None

    async def database_backward(self, *args, **kwargs) -> None:
        return None


class Migration(migrations.Migration):
    dependencies = [('models', '0008_inbound_large_bodies')]

    initial = False

    operations = [
        ops.AddField(
            model_name='OutboundMessage',
            name='returns',
            field=fields.IntField(default=0, db_default=0),
        ),
        AlterDescriptionOnly(
            model_name='PaymentRequest',
            name='status',
            field=fields.CharEnumField(default=RequestStatus.SENT, description='SENT: sent\nVIEWED: viewed\nPAID: paid\nFAILED: failed\nREFUNDED: refunded\nCANCELLED: cancelled\nEXPIRED: expired\nPARTIALLY_REFUNDED: partially_refunded\nDISPUTED: disputed\nBOUNCED: bounced', enum_type=RequestStatus, max_length=18),
        ),
    ]
