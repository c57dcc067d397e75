"""Handlers act on the chain's decision. Each commits its records, its
outbound mail and the inbound message's completion in one transaction, so
a crash either leaves the message to be processed again or fully done."""
