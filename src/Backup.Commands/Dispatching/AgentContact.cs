namespace Backup.Commands.Dispatching;

/// <summary>
/// When an agent last polled for work. A plain document, not an event, for the same reason as lease renewals: a poll
/// every few seconds per agent is noise in the catalog. What matters is recorded as events by the alert monitor: the
/// agent went quiet (an "agent lost" alert) and came back (resolved).
/// </summary>
public sealed class AgentContact
{
    public Guid Id { get; set; }
    public DateTimeOffset LastPolledAt { get; set; }
}
