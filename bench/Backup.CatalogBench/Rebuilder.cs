using System.Diagnostics;
using Backup.Projections;
using Backup.Projections.Compliance;
using JasperFx.Events.Projections;
using Marten;
using Npgsql;

namespace Backup.CatalogBench;

/// <summary>
/// Rebuilds projections one at a time with the async daemon's rebuild API (<c>RebuildProjectionAsync</c>: tear down, replay
/// every event from the start), on the product's own store configuration. Reports seconds and events/s, counting every event
/// in the store (the projection reads the types it handles, but has to get through the whole log).
/// Default: the async projections (what the workers' daemon keeps); <c>--projections a,b</c> names others (inline ones too).
/// A projection already rebuilt is skipped unless <c>--again true</c>, so an interrupted run continues with the next.
/// </summary>
public static class Rebuilder
{
    public static async Task<int> RunAsync(string connection, Options options, CancellationToken ct)
    {
        var schema = options.Schema;
        var pageSize = (int)options.Long("page", 0);
        var cacheLimit = (int)options.Long("cache", -1);
        using var store = DocumentStore.For(o =>
        {
            o.ConfigureCatalog(connection, schema);
            // --page N: an experiment with the daemon's page size (events fetched and applied per batch) over the product's setting.
            if (pageSize > 0)
                foreach (var projection in o.Projections.All.OfType<ProjectionBase>()) projection.Options.BatchSize = pageSize;
            // --cache N: an experiment with the aggregations' cache of recently used views (kept between pages). Tried at 1M events:
            // the recovery-point view rebuilt slower with 50,000 cached (18-20k events/s against 23-25k), so the product leaves it off.
            if (cacheLimit >= 0)
                foreach (var projection in o.Projections.All.OfType<ProjectionBase>()) projection.Options.CacheLimitPerTenant = cacheLimit;
        });
        var all = store.Options.Projections.All.ToList();
        var names = options.Get("projections", "") is { Length: > 0 } listed
            ? listed.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            : [.. all.Where(p => p.Lifecycle == ProjectionLifecycle.Async).Select(p => p.Name)];
        var again = options.Get("again", "false") == "true";

        long events;
        await using (var db = new NpgsqlConnection(connection))
        {
            await db.OpenAsync(ct);
            await using var count = new NpgsqlCommand($"select count(*) from {schema}.mt_events", db);
            events = (long)(await count.ExecuteScalarAsync(ct))!;
            var done = new HashSet<string>();
            await using var read = new NpgsqlCommand($"select name from {schema}.catbench_results where step = 'rebuild'", db);
            await using (var r = await read.ExecuteReaderAsync(ct))
                while (await r.ReadAsync(ct)) done.Add(r.GetString(0));
            if (!again) names = [.. names.Where(n => !done.Contains(n))];
        }
        if (names.Length == 0)
        {
            Console.WriteLine("rebuild: every projection asked for is rebuilt already (--again true to redo)");
            return 0;
        }

        using var daemon = await store.BuildProjectionDaemonAsync();
        foreach (var name in names)
        {
            ct.ThrowIfCancellationRequested();
            if (name == ComplianceProjection.Name)
            {
                // The teardown deletes the snapshot rows with a plain DELETE (Marten's table teardown), minutes over a year's rows and
                // past the 30 s command timeout; emptying the table first (untimed) is what an operator rebuilding it would do.
                await using var db = new NpgsqlConnection(connection);
                await db.OpenAsync(ct);
                await using var truncate = new NpgsqlCommand($"truncate {schema}.{ComplianceProjection.TableName}", db);
                await truncate.ExecuteNonQueryAsync(ct);
                Console.WriteLine($"rebuild: {schema}.{ComplianceProjection.TableName} truncated before the rebuild (not timed)");
            }
            Console.WriteLine($"rebuild: {name} over {events:N0} events ...");
            var clock = Stopwatch.StartNew();
            await daemon.RebuildProjectionAsync(name, TimeSpan.FromHours(3), ct);
            var seconds = clock.Elapsed.TotalSeconds;
            Console.WriteLine($"rebuild: {name} {seconds:N1} s, {events / seconds:N0} events/s");
            await Progress.RecordAsync(connection, schema, "rebuild", name, seconds, $"{events}", ct);
            await Machine.RecordLoadAsync(connection, schema, $"rebuild {name}", ct);
        }
        return 0;
    }
}
