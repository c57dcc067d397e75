"""Reminders that chase for the staff: a firm's schedule (schedule.py, set
by `clienttrack firm reminders` or the admin's mail command `reminders`)
and the daily run that sends them with one digest per staff member
(chase.py, run by housekeeping)."""
