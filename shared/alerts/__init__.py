"""Alerts (issue 18): rules that watch failures, breakers, jobs, recovery and pickup, and tell people.

A timer evaluates every rule (ALERT_SCHEDULE) and the events themselves ask for an evaluation at once
(through the `alert-events` queue, so the engine never waits for a notification). One alert per rule
per cooldown, a "resolved" notice when the condition clears; notices go to a webhook (signed), a Teams
Workflows webhook (an Adaptive Card), or email (Azure Communication Services in Azure, SMTP locally).
"""
