"""A request's documents (its message body and attachments, and the
client's replies and their files, all sealed under its data key): how
they are stored in the blob store (storing.py), moved there from the
database by `clienttrack blobs migrate` (migrate.py) and deleted for good
once the firm's retention period is over (retention.py). Reading them back
is gateway/vault/sealed.py."""
