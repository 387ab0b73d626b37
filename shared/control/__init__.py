"""Control over delivery per integration (issue 18): pause and resume, the circuit breaker, rate limits.

While an integration is paused (by an operator, or by its breaker) the engine puts its messages in
the hold (`held` table) instead of attempting them; resume drains the hold in arrival order. A rate
limit paces delivery attempts across every instance through shared token slots in storage.
"""
