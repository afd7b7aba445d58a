using Marten;
using Npgsql;

namespace Backup.Commands.CollectingGarbage;

/// <summary>
/// The PostgreSQL advisory lock that keeps garbage collection apart from what adds references to packs. Commits, pack
/// records and the known-chunk list take it shared (they run side by side); the collector takes it exclusive while it
/// decides and deletes, so it never sees a half-made reference and nobody sees a half-made collection. One lock per
/// schema (tests and tenants on one database do not block each other). Held until the session's transaction ends.
/// </summary>
public static class CollectionLock
{
    public static Task SharedAsync(IQuerySession session, CancellationToken ct) => TakeAsync(session, "pg_advisory_xact_lock_shared", ct);

    public static Task ExclusiveAsync(IQuerySession session, CancellationToken ct) => TakeAsync(session, "pg_advisory_xact_lock", ct);

    private static async Task TakeAsync(IQuerySession session, string function, CancellationToken ct)
    {
        if (session is IDocumentSession writer) await writer.BeginTransactionAsync(ct);
        else throw new InvalidOperationException("The collection lock needs a document session (it lives as long as its transaction).");
        var connection = session.Connection ?? throw new InvalidOperationException("The session has no connection.");
        await using var command = new NpgsqlCommand($"select {function}(@key)", connection);
        command.Parameters.AddWithValue("key", KeyFor(session.DocumentStore.Options.DatabaseSchemaName));
        await command.ExecuteNonQueryAsync(ct);
    }

    public static long KeyFor(string schema) =>
        Common.AdvisoryLockKey.For($"backup-pack-collection:{schema}");
}
