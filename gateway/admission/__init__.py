"""Admission: the SMTP dialogue, sender authentication and the intake that queues a message before the 250."""
