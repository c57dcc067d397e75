"""Reports and accounting exports: `report FORMAT PERIOD [STATUS]` by mail
and `clienttrack report` on the command line.

grammar (the words) -> periods (the days, in the firm's timezone) -> rows
(read from the database in batches) -> one writer per format (writers/)
-> summary (the reply's text). export ties them together; mail and cli
are the two ways in.
"""
