"""Rendering, with no I/O: one module per channel, and `report` for what every channel says.

A new channel adds `render/<name>.py` (its message from a Report) and `channels/<name>.py` (sending).
Values from Mixpanel are escaped in HTML, escaped for Slack, neutralised in CSV, reduced to GSM-7 in
the SMS with nothing a phone can tap, and never placed in a subject. Every renderer starts from
`report.showable`, so a window at the ends of the calendar is shown in UTC rather than raising.
"""
