using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using Npgsql;

namespace Backup.CatalogBench;

/// <summary>
/// Latency of the API's catalog queries under <c>--clients</c> concurrent HTTP clients (default 8): per query, a warm-up of
/// two requests per client, then <c>--requests</c> requests (default 400) shared by the clients, each timed from sending to
/// the last byte of the body read. Percentiles are nearest-rank over those requests.
/// </summary>
public static class Latency
{
    private sealed record Query(string Name, Func<Random, string> Path, string Check);

    public static async Task<int> RunAsync(string connection, Options options, CancellationToken ct)
    {
        var schema = options.Schema;
        var url = options.Get("url", "http://127.0.0.1:5191").TrimEnd('/');
        var key = options.Get("key", "");
        var clients = (int)options.Long("clients", 8);
        var requests = (int)options.Long("requests", 400);
        var itemsPath = options.Get("items", "");

        Progress progress;
        int planVersion;
        await using (var db = new NpgsqlConnection(connection))
        {
            await db.OpenAsync(ct);
            progress = await Progress.ReadAsync(db, schema, ct) ?? throw new InvalidOperationException($"nothing loaded in {schema}");
            // A schema loaded before plans had versions is plan 1.
            await using var plan = new NpgsqlCommand(
                $"alter table {schema}.catbench_progress add column if not exists plan_version int not null default 1; select plan_version from {schema}.catbench_progress where id = 1", db);
            planVersion = (int)(await plan.ExecuteScalarAsync(ct))!;
        }
        var sources = Enumerable.Range(0, progress.DataSources).Select(YearOfBackups.SourceId).ToArray();
        var groups = (progress.DataSources + YearOfBackups.SourcesPerGroup - 1) / YearOfBackups.SourcesPerGroup;
        var asOf = progress.YearEnd.AddDays(-182).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = clients, PooledConnectionLifetime = TimeSpan.FromMinutes(30) })
        {
            BaseAddress = new Uri(url),
            Timeout = TimeSpan.FromMinutes(2),
        };
        http.DefaultRequestHeaders.Add("Authorization", $"ApiKey {key}");

        var queries = new List<Query>
        {
            new("recovery points, first page", _ => "/api/recovery-points", "items"),
            new("recovery points of a data source", r => $"/api/recovery-points?dataSourceId={sources[r.Next(sources.Length)]}", "items"),
            new("compliance now", _ => "/api/compliance", "dataSources"),
            new("compliance now, one group", r => $"/api/compliance?groupId={YearOfBackups.GroupId(r.Next(groups))}", "dataSources"),
            new($"compliance as of {asOf[..10]}", _ => $"/api/compliance?asOf={asOf}", "dataSources"),
            // A different instant every request (the API keeps rows it read: the same instant again is served mostly from memory).
            new("compliance as of a random instant of the year", r =>
                $"/api/compliance?asOf={progress.YearEnd.AddSeconds(-r.Next(1, 365 * 86_400)).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture)}",
                "dataSources"),
        };
        // Item search (GET /api/items, the item catalog): measured when this build maps it (its Swagger says so) and the schema was
        // loaded with items (plan 2 on).
        var swagger = await http.GetStringAsync("/swagger/v1/swagger.json", ct);
        if (!swagger.Contains("\"/api/items\"", StringComparison.Ordinal))
            await Progress.RecordAsync(connection, schema, "latency", "item search", double.NaN, "n/a: GET /api/items is not in this build", ct);
        else if (planVersion < 2)
            await Progress.RecordAsync(connection, schema, "latency", "item search", double.NaN, "n/a: this schema was loaded without items (plan 1)", ct);
        else
        {
            queries.Add(new("item search, one path", r =>
            {
                var source = r.Next(sources.Length);
                return $"/api/items?path={Uri.EscapeDataString($"{YearOfBackups.RootOf(source)}/{YearOfBackups.FilePath(r.Next(YearOfBackups.FilesPerSource))}")}";
            }, "items"));
            queries.Add(new("item search, a name everywhere", r => $"/api/items?name={Uri.EscapeDataString($"doc-{r.Next(YearOfBackups.FilesPerSource):D4}.*")}", "items"));
            if (itemsPath.Length > 0) queries.Add(new("item search, ITEMS_QUERY", _ => itemsPath, "items"));
        }

        foreach (var query in queries)
        {
            var random = new Random(42);
            // Warm-up, and a look at what the query returns.
            var (status, body) = await GetAsync(http, query.Path(random), ct);
            if (status != HttpStatusCode.OK) throw new InvalidOperationException($"{query.Name}: {(int)status} {body[..Math.Min(300, body.Length)]}");
            var shape = Describe(body, query.Check);
            await Task.WhenAll(Enumerable.Range(0, clients).Select(async c =>
            {
                var r = new Random(c);
                for (var i = 0; i < 2; i++) await GetAsync(http, query.Path(r), ct);
            }));

            var latencies = new double[requests];
            long bytes = 0;
            var next = -1;
            var errors = 0;
            var wall = Stopwatch.StartNew();
            await Task.WhenAll(Enumerable.Range(0, clients).Select(async c =>
            {
                var r = new Random(1000 + c);
                int i;
                while ((i = Interlocked.Increment(ref next)) < requests)
                {
                    var path = query.Path(r);
                    var clock = Stopwatch.StartNew();
                    using var response = await http.GetAsync(path, HttpCompletionOption.ResponseHeadersRead, ct);
                    var content = await response.Content.ReadAsByteArrayAsync(ct);
                    latencies[i] = clock.Elapsed.TotalMilliseconds;
                    Interlocked.Add(ref bytes, content.Length);
                    if (response.StatusCode != HttpStatusCode.OK) Interlocked.Increment(ref errors);
                }
            }));
            var seconds = wall.Elapsed.TotalSeconds;
            Array.Sort(latencies);
            double P(double p) => latencies[Math.Clamp((int)Math.Ceiling(p * requests) - 1, 0, requests - 1)];
            var detail = $"p50={P(0.50):F1};p95={P(0.95):F1};p99={P(0.99):F1};max={latencies[^1]:F1};mean={latencies.Average():F1};rps={requests / seconds:F1};"
                + $"kb={bytes / 1024.0 / requests:F1};errors={errors};clients={clients};requests={requests};returns={shape}";
            Console.WriteLine($"latency: {query.Name}: {detail}");
            await Progress.RecordAsync(connection, schema, "latency", query.Name, P(0.95), detail, ct);
        }
        await Machine.RecordLoadAsync(connection, schema, "measure", ct);
        return 0;
    }

    private static async Task<(HttpStatusCode, string)> GetAsync(HttpClient http, string path, CancellationToken ct)
    {
        using var response = await http.GetAsync(path, ct);
        return (response.StatusCode, await response.Content.ReadAsStringAsync(ct));
    }

    private static string Describe(string body, string member)
    {
        if (member.Length == 0) return $"{body.Length} bytes";
        using var doc = JsonDocument.Parse(body);
        return doc.RootElement.TryGetProperty(member, out var list) && list.ValueKind == JsonValueKind.Array
            ? $"{list.GetArrayLength()} {member}"
            : $"{body.Length} bytes";
    }
}
