using System.Globalization;
using Npgsql;

namespace Backup.CatalogBench;

public static class Report
{
    /// <summary>pg_database_size of the whole database (every developer's schemas) and the total size (tables, indexes, TOAST) of this schema.</summary>
    public static async Task<int> SizeAsync(string connection, Options options, CancellationToken ct)
    {
        var schema = options.Schema;
        await using var db = new NpgsqlConnection(connection);
        await db.OpenAsync(ct);
        await using var size = new NpgsqlCommand(
            """
            select pg_database_size(current_database()),
                   coalesce((select sum(pg_total_relation_size(c.oid)) from pg_class c join pg_namespace n on n.oid = c.relnamespace
                             where n.nspname = @s and c.relkind in ('r', 'm')), 0)::bigint,
                   coalesce((select string_agg(t, ', ') from (
                       select format('%s %s', c.relname, pg_size_pretty(pg_total_relation_size(c.oid))) t
                       from pg_class c join pg_namespace n on n.oid = c.relnamespace
                       where n.nspname = @s and c.relkind = 'r' order by pg_total_relation_size(c.oid) desc limit 6) x), '')
            """, db);
        size.Parameters.AddWithValue("s", schema);
        await using var r = await size.ExecuteReaderAsync(ct);
        await r.ReadAsync(ct);
        var (database, ofSchema, largest) = (r.GetInt64(0), r.GetInt64(1), r.GetString(2));
        await r.DisposeAsync();
        Console.WriteLine($"size: database {database / 1e9:N2} GB, schema {schema} {ofSchema / 1e9:N2} GB ({largest})");
        await Progress.RecordAsync(connection, schema, "size", "database", database, null, ct);
        await Progress.RecordAsync(connection, schema, "size", "schema", ofSchema, largest, ct);
        return 0;
    }

    /// <summary>One table of what the steps recorded in <c>catbench_results</c> and the progress row.</summary>
    public static async Task<int> RunAsync(string connection, Options options, CancellationToken ct)
    {
        var schema = options.Schema;
        await using var db = new NpgsqlConnection(connection);
        await db.OpenAsync(ct);
        var progress = await Progress.ReadAsync(db, schema, ct) ?? throw new InvalidOperationException($"nothing loaded in {schema}");
        var rows = new List<(string Step, string Name, double Value, string? Detail)>();
        await using (var read = new NpgsqlCommand($"select step, name, value, detail from {schema}.catbench_results order by step, name", db))
        await using (var r = await read.ExecuteReaderAsync(ct))
            while (await r.ReadAsync(ct)) rows.Add((r.GetString(0), r.GetString(1), r.GetDouble(2), r.IsDBNull(3) ? null : r.GetString(3)));

        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine();
        Console.WriteLine($"Catalog benchmark, schema {schema}: {progress.Events:N0} events, {progress.DataSources:N0} data sources, a year to {progress.YearEnd:yyyy-MM-dd HH:mm} UTC"
            + (progress.Done ? "" : $" (load NOT complete: {progress.Batches} batches)"));
        Console.WriteLine($"{"step",-48}{"figure",-22}{"p50 ms",9}{"p95 ms",9}{"p99 ms",9}{"target",12}{"met",6}");
        Console.WriteLine(new string('-', 115));
        Console.WriteLine($"{"load (Quick append, batches of " + progress.BatchSize + ")",-48}{$"{progress.Events / Math.Max(progress.LoadSeconds, 1e-9):N0} events/s",-22}{"",27}{"",12}{"",6}");
        double rebuildTotal = 0;
        long events = 0;
        foreach (var row in rows.Where(r => r.Step == "rebuild"))
        {
            events = long.Parse(row.Detail ?? "0", inv);
            rebuildTotal += row.Value;
            var rate = events / row.Value;
            Console.WriteLine($"{"rebuild " + row.Name,-48}{$"{rate:N0} events/s ({row.Value:N0} s)",-22}{"",27}{">= 20,000",12}{(rate >= 20_000 ? "yes" : "NO"),6}");
        }
        if (rebuildTotal > 0)
            Console.WriteLine($"{"rebuild, all of them one after another",-48}{$"{events / rebuildTotal:N0} events/s ({rebuildTotal:N0} s)",-22}");
        string[] order = ["recovery points, first page", "recovery points of a data source", "compliance now", "compliance now, one group", "compliance as of", "item search"];
        foreach (var row in rows.Where(r => r.Step == "latency").OrderBy(r => Array.FindIndex(order, o => r.Name == o || (o is "compliance as of" or "item search" && r.Name.StartsWith(o, StringComparison.Ordinal)))))
        {
            var target = row.Name.StartsWith("compliance as of", StringComparison.Ordinal) ? 100.0 : row.Name.StartsWith("recovery points", StringComparison.Ordinal) || row.Name.StartsWith("compliance now", StringComparison.Ordinal) ? 50.0 : double.NaN;
            if (double.IsNaN(row.Value))
            {
                Console.WriteLine($"{row.Name,-48}{row.Detail}");
                continue;
            }
            var f = (row.Detail ?? "").Split(';').Select(p => p.Split('=')).Where(p => p.Length == 2).ToDictionary(p => p[0], p => p[1]);
            var figure = $"{f.GetValueOrDefault("rps")} req/s, {f.GetValueOrDefault("kb")} KB";
            Console.WriteLine($"{row.Name + " (" + f.GetValueOrDefault("returns") + ")",-48}{figure,-22}{f.GetValueOrDefault("p50"),9}{f.GetValueOrDefault("p95"),9}{f.GetValueOrDefault("p99"),9}"
                + $"{(double.IsNaN(target) ? "-" : $"p95 < {target:N0}"),12}{(double.IsNaN(target) ? "" : row.Value < target ? "yes" : "NO"),6}");
        }
        var clients = rows.Where(r => r.Step == "latency" && r.Detail is not null).Select(r => r.Detail!.Split(';').FirstOrDefault(p => p.StartsWith("clients=", StringComparison.Ordinal))).FirstOrDefault(c => c is not null);
        if (clients is not null) Console.WriteLine($"(latencies with {clients[8..]} concurrent HTTP clients against the Release API)");
        var machine = rows.Where(r => r.Step == "machine").Select(r => $"{r.Name} {r.Value:N1}").ToList();
        if (machine.Count > 0) Console.WriteLine($"machine load average (1 min, 2 cores shared with other work) at the end of: {string.Join(", ", machine)}");
        foreach (var row in rows.Where(r => r.Step == "size"))
            Console.WriteLine($"{"size: " + row.Name,-48}{$"{row.Value / 1e9:N2} GB",-22}{(row.Detail is null ? "" : "  " + row.Detail)}");
        return 0;
    }
}

public static class Machine
{
    /// <summary>The 1-minute load average at the end of a step: this machine's 2 cores are shared, and the figures say so.</summary>
    public static async Task RecordLoadAsync(string connection, string schema, string step, CancellationToken ct)
    {
        var text = await File.ReadAllTextAsync("/proc/loadavg", ct);
        var load = double.Parse(text.Split(' ')[0], CultureInfo.InvariantCulture);
        await Progress.RecordAsync(connection, schema, "machine", step, load, text.Trim(), ct);
    }
}
