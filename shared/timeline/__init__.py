"""The message timeline: what happened to a message from its first failed attempt on (issue 17)."""
