"""A request's documents (its message body and attachments, sealed): how
they are stored in the blob store (storing.py), moved there from the
database by `clienttrack blobs migrate` (migrate.py) and deleted for good
once the firm's retention period is over (retention.py). Reading them back
is gateway/vault/sealed.py."""
