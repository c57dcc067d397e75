"""The inbound stage: the queue of admitted messages, the runner that claims them and the chain that decides."""
