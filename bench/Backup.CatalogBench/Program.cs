using Backup.CatalogBench;

// The catalog benchmark's steps (bench/catalog.sh runs them in order): never part of the test suite.
//   plan    --events N                          counts the planned events without touching the database
//   load    --schema S --events N [--batch B]   appends the planned year with Quick append; resumable
//   rebuild --schema S [--projections a,b]      rebuilds projections with the daemon's rebuild API
//   measure --schema S --url U --key K [--clients 8] [--requests 400]   latency percentiles of the API's queries
//   size    --schema S                          database and schema size
//   report  --schema S                          one table of everything recorded
var command = args.Length > 0 ? args[0] : "";
var options = Options.Parse(args.Skip(1).ToArray());
var connection = Environment.GetEnvironmentVariable("ConnectionStrings__Marten")
    ?? throw new InvalidOperationException("ConnectionStrings__Marten is not set (eval \"$(bash scripts/services.sh env)\").");
using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    stop.Cancel();
};

return command switch
{
    "plan" => Plan.Run(options),
    "load" => await Loader.RunAsync(connection, options, stop.Token),
    "rebuild" => await Rebuilder.RunAsync(connection, options, stop.Token),
    "measure" => await Latency.RunAsync(connection, options, stop.Token),
    "size" => await Report.SizeAsync(connection, options, stop.Token),
    "report" => await Report.RunAsync(connection, options, stop.Token),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: Backup.CatalogBench plan|load|rebuild|measure|size|report [--schema S] [--events N] ...");
    return 2;
}

namespace Backup.CatalogBench
{
    public sealed class Options(Dictionary<string, string> values)
    {
        public static Options Parse(string[] args)
        {
            var values = new Dictionary<string, string>(StringComparer.Ordinal);
            for (var i = 0; i + 1 < args.Length; i += 2) values[args[i].TrimStart('-')] = args[i + 1];
            return new Options(values);
        }

        public string Get(string name, string fallback) => values.TryGetValue(name, out var v) && v.Length > 0 ? v : fallback;
        public long Long(string name, long fallback) => values.TryGetValue(name, out var v) && v.Length > 0 ? long.Parse(v, System.Globalization.CultureInfo.InvariantCulture) : fallback;
        public string Schema => Get("schema", "catbench");
    }

    public static class Plan
    {
        public static int Run(Options options)
        {
            var events = options.Long("events", 10_000_000);
            var year = new YearOfBackups(YearOfBackups.DataSourcesFor(events), new DateTimeOffset(2026, 12, 1, 0, 0, 0, TimeSpan.Zero));
            var byType = new Dictionary<string, long>();
            long total = 0;
            foreach (var e in year.Events())
            {
                total++;
                var name = e.Event.GetType().Name;
                byType[name] = byType.GetValueOrDefault(name) + 1;
            }
            Console.WriteLine($"{year.DataSources} data sources, {year.Groups} groups, {year.Agents} agents, {year.Start:yyyy-MM-dd} to {year.End:yyyy-MM-dd}: {total:N0} events ({total / (double)year.DataSources:N0} per data source)");
            foreach (var (name, count) in byType.OrderByDescending(p => p.Value)) Console.WriteLine($"  {name,-28}{count,12:N0}{100.0 * count / total,8:N1} %");
            return 0;
        }
    }
}
