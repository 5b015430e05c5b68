"""Notifierator: tells a team, by email and SMS, who signed up in their Mixpanel project.

Modules, one concern each: `trigger` (message and window), `settings`, `secrets`, `mixpanel`,
`digest` (rendering) with `sms_text` (GSM-7), `channels.email`, `channels.sms`, `retry`, `errors`,
`logs`, and `run`, which ties them together.
"""
