"""Notifierator: tells a team, by email, SMS and Slack, who signed up in their Mixpanel project.

Where each behaviour lives: the README's Layout table (`run` -> `plan`, `fetch`, `deliver`).
"""
