"""Local stand-ins for Mixpanel, SendGrid, Twilio, Slack and Secret Manager: real HTTP servers on
127.0.0.1 that speak the documented APIs, record what they receive and play scripted faults.
Shared by the tests, the demo and the benchmark; never imported by the function itself."""
