using JasperFx.Events.Projections;
using Marten;
using Microsoft.Extensions.Options;

namespace Backup.Api.Infrastructure;

/// <summary>
/// Read-your-writes for the views a client polls right after a job (recovery points, restores, jobs), which Marten's async
/// daemon projects: before the query runs, it waits until the view's projection has passed every event committed when the
/// request arrived, so a point whose commit has answered is listed as such by the next read. Bounded by
/// <see cref="ServerOptions.ReadYourWritesWait"/>: a daemon that is down or far behind makes reads stale, never failed.
/// Chosen over inline projections, which would put the views' loads and writes (and their cursors' event sequences, which
/// Marten's quick append assigns only in the database, after an inline projection has run; not measured here) into every commit; the daemon is woken at once by Marten's LISTEN/NOTIFY
/// (<c>UseListenNotifyForEventAppends</c>), so the wait is the projection's own work, not a polling interval.
/// </summary>
public static class ReadYourWrites
{
    /// <summary>Between looks at the projection's progress while waiting: one cheap indexed read per look.</summary>
    private static readonly TimeSpan Look = TimeSpan.FromMilliseconds(10);

    public static TBuilder ReadsYourWrites<TBuilder>(this TBuilder builder, string projection) where TBuilder : IEndpointConventionBuilder =>
        builder.AddEndpointFilter(async (context, next) =>
        {
            var http = context.HttpContext;
            await WaitAsync(http.RequestServices.GetRequiredService<IDocumentStore>(), new ShardName(projection),
                http.RequestServices.GetRequiredService<IOptions<ServerOptions>>().Value.ReadYourWritesWait, http.RequestAborted);
            return await next(context);
        });

    private static async Task WaitAsync(IDocumentStore store, ShardName shard, TimeSpan bound, CancellationToken ct)
    {
        if (bound <= TimeSpan.Zero) return;
        var database = store.Storage.Database;
        long committed;
        // The highest committed event, not the sequence's last value: a rolled-back append (a lost claim race) takes a number
        // no projection will ever pass.
        await using (var connection = database.CreateConnection())
        {
            await connection.OpenAsync(ct);
            await using var read = new Npgsql.NpgsqlCommand($"select coalesce(max(seq_id), 0) from {store.Options.Events.DatabaseSchemaName}.mt_events", connection);
            committed = (long)(await read.ExecuteScalarAsync(ct))!;
        }
        var started = TimeProvider.System.GetTimestamp();
        while (await database.ProjectionProgressFor(shard, ct) < committed && TimeProvider.System.GetElapsedTime(started) < bound)
            await Task.Delay(Look, ct);
    }
}
