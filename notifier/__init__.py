"""Notifierator: tells a team, by email, SMS and Slack, who signed up in their Mixpanel project.

Where each behaviour lives: docs/architecture.md (`run` -> `plan`, `fetch`, `compose`, `deliver`).
"""
