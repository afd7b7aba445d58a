using Marten;
using Npgsql;

namespace Backup.Commands.Common;

public static class EventStreams
{
    /// <summary>Folds a stream with a decider's transition function; Version is 0 for a stream that does not exist.</summary>
    public static async Task<(T? State, long Version)> LoadAsync<T>(
        this IQuerySession session, Guid streamId, Func<T?, object, T?> next, CancellationToken ct) where T : class
    {
        var events = await session.Events.FetchStreamAsync(streamId, token: ct);
        T? state = null;
        foreach (var e in events) state = next(state, e.Data);
        return (state, events.Count == 0 ? 0 : events[^1].Version);
    }

    /// <summary>
    /// Appends on the condition that nobody else appended since the state was loaded at <paramref name="loadedVersion"/>;
    /// otherwise SaveChanges fails and nothing is written.
    /// </summary>
    public static void AppendExpected(this IDocumentSession session, Guid streamId, long loadedVersion, params object[] events) =>
        session.Events.Append(streamId, loadedVersion + events.Length, events);

    public static bool IsUniqueViolation(this Exception e)
    {
        for (var x = e; x is not null; x = x.InnerException)
            if (x is PostgresException { SqlState: PostgresErrorCodes.UniqueViolation } or JasperFx.DocumentAlreadyExistsException) return true;
        return false;
    }
}
