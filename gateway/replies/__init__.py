"""The client's replies: after unlocking, a client writes back and sends
files, sealed under the request's own data key (gateway/documents), so the
server cannot read them without the request's password either. The staff
member is told that a reply came (no content, a link) and reads it on a
page that asks for the request's password.

- store.py: keep a reply (one transaction: its files, its event, the notice);
- checklist.py: the upload= checklist, ticked as files for each line arrive;
- reading.py: the replies of a request, opened with its data key (the
  reply page, and the dashboard's request page, use it).
"""
