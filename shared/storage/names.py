"""Every storage name and key layout in one place (DESIGN.md section 2), with the prefix applied."""

from __future__ import annotations

from dataclasses import dataclass

from shared.messages.shards import INBOUND_QUEUE, MAX_INBOUND_SHARDS, shard_suffix

POISON_SUFFIX = "-poison"


def poison_queue(queue: str) -> str:
    """The queue the Functions host moves a message to after maxDequeueCount failed attempts."""
    return f"{queue}{POISON_SUFFIX}"


@dataclass(frozen=True)
class StorageNames:
    prefix: str = ""

    # queues (AzureWebJobsStorage unless noted)
    @property
    def inbound(self) -> str:
        """Shard 0 of the engine's queues: the one upstream systems write to."""
        return self.inbound_shard(0)

    def inbound_shard(self, shard: int) -> str:
        """`inbound` for shard 0, `inbound-<shard>` for the others (INBOUND_SHARDS)."""
        return f"{self.prefix}{INBOUND_QUEUE}{shard_suffix(shard)}"

    def inbound_shards(self, count: int) -> list[str]:
        """The engine's queues with INBOUND_SHARDS = `count`, shard 0 first."""
        return [self.inbound_shard(shard) for shard in range(count)]

    @property
    def every_inbound_shard(self) -> list[str]:
        """Every queue a shard may ever use, whatever INBOUND_SHARDS is now (names nothing else may take)."""
        return self.inbound_shards(MAX_INBOUND_SHARDS)

    @property
    def inbound_poison(self) -> str:
        return poison_queue(self.inbound)

    @property
    def jobs_queue(self) -> str:
        return f"{self.prefix}jobs"

    @property
    def drain_queue(self) -> str:
        """One message per page of a paused integration's hold being drained (issue 18)."""
        return f"{self.prefix}drain"

    @property
    def alert_events(self) -> str:
        """Events that ask for an alert evaluation (issue 18)."""
        return f"{self.prefix}alert-events"

    @property
    def recovery(self) -> str:
        """On RecoveryStorage: the separate failure domain."""
        return f"{self.prefix}recovery"

    # tables
    @property
    def integrations(self) -> str:
        return f"{self.prefix}integrations"

    @property
    def failures(self) -> str:
        return f"{self.prefix}failures"

    @property
    def failure_summary(self) -> str:
        return f"{self.prefix}failuresummary"

    @property
    def jobs_table(self) -> str:
        return f"{self.prefix}jobs"

    @property
    def error_window(self) -> str:
        return f"{self.prefix}errorwindow"

    @property
    def audit(self) -> str:
        """Table: the audit trail (append-only; month partitions, newest first)."""
        return f"{self.prefix}audit"

    @property
    def recovery_state(self) -> str:
        """Table: the last sweep's result (what GET /recovery shows)."""
        return f"{self.prefix}recoverystate"

    @property
    def pickups(self) -> str:
        """Table: per pickup source, the last run and the lease of the run going on."""
        return f"{self.prefix}pickups"

    @property
    def pickup_seen(self) -> str:
        """Table: items already picked, for duplicate detection (PICKUP_DEDUP_DAYS)."""
        return f"{self.prefix}pickupseen"

    @property
    def control(self) -> str:
        """Table: per integration, paused or not, the circuit breaker, the drain's lease."""
        return f"{self.prefix}control"

    @property
    def held(self) -> str:
        """Table: messages of paused integrations, in arrival order."""
        return f"{self.prefix}held"

    @property
    def rate_limit(self) -> str:
        """Table: the rate limits' token slots (a ring of rows per integration)."""
        return f"{self.prefix}ratelimit"

    @property
    def circuit_window(self) -> str:
        """Table: transient failures per integration per interval (the circuit breakers' error window)."""
        return f"{self.prefix}circuitwindow"

    @property
    def alert_rules(self) -> str:
        """Table: alert rules and their evaluation state."""
        return f"{self.prefix}alertrules"

    @property
    def alerts(self) -> str:
        """Table: the alerts that fired."""
        return f"{self.prefix}alerts"

    @property
    def timeline(self) -> str:
        """Table: message timelines (issue 17), one partition per message, events in time order."""
        return f"{self.prefix}timeline"

    @property
    def job_counters(self) -> str:
        """Table: retry jobs' settle counters (issue 19), a shard row per job and writer."""
        return f"{self.prefix}jobcounters"

    @property
    def health_probe(self) -> str:
        """Queue the sweep writes a probe to (never `inbound`: the engine would read the probe)."""
        return f"{self.prefix}healthprobe"

    # blob containers
    @property
    def payloads(self) -> str:
        return f"{self.prefix}payloads"

    @property
    def recovery_payloads(self) -> str:
        """On RecoveryStorage: bodies too large to park inline."""
        return f"{self.prefix}recoverypayloads"
