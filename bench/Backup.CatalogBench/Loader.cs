using System.Diagnostics;
using Backup.Commands.Cataloguing;
using Backup.Commands.Common;
using Backup.Projections;
using JasperFx.Events;
using JasperFx.Events.Projections;
using Marten;
using Npgsql;

namespace Backup.CatalogBench;

/// <summary>
/// Appends the planned year (<see cref="YearOfBackups"/>) in batches of consecutive events with Marten's Quick append, one
/// SaveChanges per batch (its events grouped per stream, streams in the order of their first event). Resumable: each batch
/// commits the progress row (<c>catbench_progress</c>: batches and events done) in its own transaction, and the plan is
/// deterministic, so a later run regenerates it, skips the batches done and goes on. The year ends at the instant of the
/// first run (kept in the progress row), so "now" is just after the last recorded backup.
/// <para>The inline projections are not run while loading (they would be maintained one batch at a time, which is not what
/// is measured) except the item catalog, which the product's commits maintain as they go; <c>rebuild</c> then builds the
/// async views.</para>
/// </summary>
public static class Loader
{
    public static async Task<int> RunAsync(string connection, Options options, CancellationToken ct)
    {
        var schema = options.Schema;
        var events = options.Long("events", 10_000_000);
        var batchSize = (int)options.Long("batch", 2_000);
        using var store = DocumentStore.For(o =>
        {
            o.ConfigureCatalog(connection, schema);
            o.Events.AppendMode = options.Get("append", "quick") == "quick" ? EventAppendMode.Quick : EventAppendMode.QuickWithServerTimestamps;
            // The item catalog stays inline, as at a commit: it is what the next point's diff is made against.
            foreach (var projection in o.Projections.All)
                if (projection is ProjectionBase { Lifecycle: ProjectionLifecycle.Inline } inline && projection.Name != ItemCatalogProjection.Name)
                    inline.Lifecycle = ProjectionLifecycle.Async;
        });
        await store.Storage.ApplyAllConfiguredChangesToDatabaseAsync();

        var progress = await Progress.ReadOrStartAsync(connection, schema, events, batchSize, ct);
        if (progress.Done)
        {
            Console.WriteLine($"load: already complete ({progress.Events:N0} events, {progress.DataSources} data sources)");
            return 0;
        }
        var year = new YearOfBackups(progress.DataSources, progress.YearEnd);
        Console.WriteLine($"load: {year.DataSources} data sources in {year.Groups} groups, {year.Start:yyyy-MM-dd HH:mm} to {year.End:yyyy-MM-dd HH:mm} UTC, batches of {progress.BatchSize}; "
            + (progress.Batches > 0 ? $"resuming after batch {progress.Batches} ({progress.Events:N0} events)" : "starting"));

        var batch = new List<Planned>(progress.BatchSize);
        long index = 0, appended = progress.Events, thisRun = 0;
        var clock = Stopwatch.StartNew();
        var lastCommit = clock.Elapsed;
        var lastReport = clock.Elapsed;
        using var plan = year.Events().GetEnumerator();
        var more = true;
        while (more && !ct.IsCancellationRequested)
        {
            batch.Clear();
            while (batch.Count < progress.BatchSize && (more = plan.MoveNext())) batch.Add(plan.Current);
            if (batch.Count == 0) break;
            index++;
            if (index <= progress.Batches) continue;

            await using (var session = store.LightweightSession())
            {
                session.CorrelationId = DeterministicGuid.Create($"catbench:batch:{index}").ToString("N");
                session.CausationId = "bench:catalog-load";
                session.SetHeader(CommandMetadata.ActorHeader, "bench:catalog-load");
                foreach (var stream in batch.GroupBy(p => p.StreamId))
                {
                    var action = session.Events.Append(stream.Key, stream.Select(p => p.Event).ToArray());
                    var i = 0;
                    foreach (var p in stream) action.Events[i++].Timestamp = p.At;
                }
                var now = clock.Elapsed;
                session.QueueSqlCommand(
                    $"update {schema}.catbench_progress set batches = ?, events = events + ?, last_at = ?, load_seconds = load_seconds + ?, done = ? where id = 1",
                    index, (long)batch.Count, batch[^1].At.ToUniversalTime(), (now - lastCommit).TotalSeconds, !more);
                await session.SaveChangesAsync(ct);
                lastCommit = now;
            }
            appended += batch.Count;
            thisRun += batch.Count;
            if ((clock.Elapsed - lastReport).TotalSeconds >= 10 || !more)
            {
                lastReport = clock.Elapsed;
                Console.WriteLine($"load: {appended:N0} events (batch {index}, up to {batch[^1].At:yyyy-MM-dd HH:mm}), this run {thisRun / clock.Elapsed.TotalSeconds:N0} events/s");
            }
        }
        if (ct.IsCancellationRequested)
        {
            Console.WriteLine($"load: stopped after batch {index - 1}; run again to resume");
            return 1;
        }
        progress = await Progress.ReadOrStartAsync(connection, schema, events, batchSize, ct);
        await Machine.RecordLoadAsync(connection, schema, "load", ct);
        Console.WriteLine($"load: complete, {progress.Events:N0} events in {progress.LoadSeconds:N0} s of appending ({progress.Events / progress.LoadSeconds:N0} events/s over all runs)");
        return 0;
    }
}

public sealed record Progress(int DataSources, DateTimeOffset YearEnd, int BatchSize, long Batches, long Events, bool Done, double LoadSeconds)
{
    public static async Task<Progress> ReadOrStartAsync(string connection, string schema, long events, int batchSize, CancellationToken ct)
    {
        await using var db = new NpgsqlConnection(connection);
        await db.OpenAsync(ct);
        await using (var create = new NpgsqlCommand(
            $"""
            create table if not exists {schema}.catbench_progress (
                id int primary key, events_asked bigint not null, data_sources int not null, year_end timestamptz not null, batch_size int not null,
                batches bigint not null default 0, events bigint not null default 0, last_at timestamptz, load_seconds double precision not null default 0,
                done boolean not null default false);
            create table if not exists {schema}.catbench_results (
                step text not null, name text not null, value double precision not null, detail text, primary key (step, name));
            alter table {schema}.catbench_progress add column if not exists plan_version int not null default 1;
            insert into {schema}.catbench_progress (id, events_asked, data_sources, year_end, batch_size, plan_version)
                values (1, @events, @sources, date_trunc('hour', now()), @batch, @plan) on conflict (id) do nothing;
            """, db))
        {
            create.Parameters.AddWithValue("events", events);
            create.Parameters.AddWithValue("sources", YearOfBackups.DataSourcesFor(events));
            create.Parameters.AddWithValue("batch", batchSize);
            create.Parameters.AddWithValue("plan", YearOfBackups.PlanVersion);
            await create.ExecuteNonQueryAsync(ct);
        }
        var progress = await ReadAsync(db, schema, ct) ?? throw new InvalidOperationException("no progress row");
        await using (var plan = new NpgsqlCommand($"select plan_version from {schema}.catbench_progress where id = 1", db))
            if ((int)(await plan.ExecuteScalarAsync(ct))! != YearOfBackups.PlanVersion && !progress.Done)
                throw new InvalidOperationException($"schema {schema} was loaded with another version of the plan; drop it (bench/catalog.sh drop) and load again");
        await using var asked = new NpgsqlCommand($"select events_asked from {schema}.catbench_progress where id = 1", db);
        var eventsAsked = (long)(await asked.ExecuteScalarAsync(ct))!;
        if (eventsAsked != events)
            throw new InvalidOperationException($"schema {schema} was started with EVENTS={eventsAsked}; resume with that size or drop the schema (bench/catalog.sh drop)");
        return progress;
    }

    public static async Task<Progress?> ReadAsync(NpgsqlConnection db, string schema, CancellationToken ct)
    {
        await using var read = new NpgsqlCommand(
            $"select data_sources, year_end, batch_size, batches, events, done, load_seconds from {schema}.catbench_progress where id = 1", db);
        await using var r = await read.ExecuteReaderAsync(ct);
        if (!await r.ReadAsync(ct)) return null;
        return new Progress(r.GetInt32(0), new DateTimeOffset(r.GetDateTime(1), TimeSpan.Zero), r.GetInt32(2), r.GetInt64(3), r.GetInt64(4), r.GetBoolean(5), r.GetDouble(6));
    }

    public static async Task RecordAsync(string connection, string schema, string step, string name, double value, string? detail, CancellationToken ct)
    {
        await using var db = new NpgsqlConnection(connection);
        await db.OpenAsync(ct);
        await using var cmd = new NpgsqlCommand(
            $"insert into {schema}.catbench_results (step, name, value, detail) values (@s, @n, @v, @d) on conflict (step, name) do update set value = excluded.value, detail = excluded.detail", db);
        cmd.Parameters.AddWithValue("s", step);
        cmd.Parameters.AddWithValue("n", name);
        cmd.Parameters.AddWithValue("v", value);
        cmd.Parameters.AddWithValue("d", (object?)detail ?? DBNull.Value);
        await cmd.ExecuteNonQueryAsync(ct);
    }
}
