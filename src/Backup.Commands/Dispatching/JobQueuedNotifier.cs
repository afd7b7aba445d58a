using Marten;

namespace Backup.Commands.Dispatching;

/// <summary>
/// Tells whoever listens (the API's held polls, <c>jobs/next?wait=</c>) that a job was queued for an agent: a
/// <c>pg_notify</c> on <see cref="Channel"/> with the agent's id, queued into the same transaction as the events that queue
/// the job, so it is delivered when (and only if) they commit, whichever process appended them (API, scheduler, lease reaper).
/// PostgreSQL drops duplicate notifications of one transaction, so a run requesting many jobs for one agent sends one.
/// </summary>
public sealed class JobQueuedNotifier : DocumentSessionListenerBase
{
    public const string Channel = "backup_job_queued";

    public override Task BeforeSaveChangesAsync(IDocumentSession session, CancellationToken token)
    {
        HashSet<Guid>? agents = null;
        foreach (var stream in session.PendingChanges.Streams())
        foreach (var @event in stream.Events)
        {
            if (QueuedFor(@event.Data) is { } agent) (agents ??= []).Add(agent);
        }
        foreach (var agent in agents ?? [])
            session.QueueSqlCommand($"select pg_notify('{Channel}', ?)", agent.ToString("D"));
        return Task.CompletedTask;
    }

    /// <summary>The agent whose queue this event puts a job into (the same events that make a <see cref="QueuedJob"/> Queued).</summary>
    private static Guid? QueuedFor(object data) => data switch
    {
        IJobRequested e => e.Describe().AgentId,
        JobRequeued e => e.AgentId,
        JobReleased e => e.AgentId,
        _ => null,
    };
}
