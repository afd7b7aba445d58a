using Backup.Commands.Agents;
using Backup.Commands.Cataloguing;
using Backup.Commands.CheckingRecoveryPoints;
using Backup.Commands.Common;
using Backup.Commands.DataSources;
using Backup.Commands.Dispatching;
using Backup.Commands.ProtectionGroups;
using Backup.Commands.RecoveryPoints;
using Backup.Commands.Restores;
using Backup.Commands.Scheduling;
using Backup.Commands.VaultTransfers;
using Backup.Storage.Contracts;
using Backup.Storage.Format;

namespace Backup.CatalogBench;

/// <summary>One event of the plan: when it happens, on which stream.</summary>
public sealed record Planned(DateTimeOffset At, Guid StreamId, object Event);

/// <summary>
/// A year of backups of <see cref="DataSources"/> data sources, deterministic (seeded per data source), as the product's
/// schedulers, agents and workers would have recorded it, in time order. Two kinds of protection group, alternating:
/// <list type="bullet">
/// <item>servers: 15-minute syncs, recovery points at 08:00 and 20:00 every day, 14 days on disk; online copy daily at 21:00
/// (GFS 30 days, 8 weeks, 12 months);</item>
/// <item>workstations: 15-minute syncs, recovery points at 12:00 and 18:00 Monday to Friday, 14 days on disk; online copy weekly
/// on Saturday 21:00 (GFS 8 weeks, 12 months).</item>
/// </list>
/// Syncs themselves record no event in this product (every recovery point carries its sync); what the log holds per backup
/// run is BackupRequested, BackupStarted, PackWrittenToDisk per ~16 MiB pack (the initial full backup 4–64 packs, an
/// incremental mostly one), RecoveryPointCreated with its ItemsCatalogued on the point's catalog stream (the initial tree of 1,000 files and their folders,
/// then the 1–8 files each backup finds changed), and 14 days later RecoveryPointExpired (disk); 1.5 % of runs fail, 0.4 %
/// lose their lease once (JobLeaseExpired, JobRequeued, started again), 2 % skip a few items. Each online copy is
/// VaultTransferStarted, PackUploadedToVault per pack the vault lacks, VaultTransferCompleted (1 % fail once and are
/// retried), later RecoveryPointExpired (vault) by GFS. Per data source also a weekly spot check of its latest point
/// (RecoveryPointChecked; 0.5 % find a damaged pack, repaired the next night) and a restore every quarter. Globally the
/// daily consistency check (ConsistencyCheckDue, ConsistencyCheckCompleted) and each group's OnlineBackupDue. That is
/// ~5,300 events per data source and year: 2,000 data sources make ~10.6 million.
/// </summary>
public sealed class YearOfBackups
{
    /// <summary>Changes whenever the plan does: a schema loaded with another plan cannot be resumed with this one.</summary>
    public const int PlanVersion = 3;
    public const int EventsPerDataSource = 5_000;

    /// <summary>Files in each data source's tree (plus their folders); each backup changes a few of them.</summary>
    public const int FilesPerSource = 1_000;
    private static readonly string[] Extensions = ["docx", "xlsx", "pdf", "pst", "txt"];

    /// <summary>The relative path of file <paramref name="f"/> of every data source's tree.</summary>
    public static string FilePath(int f) => $"dept{f % 8}/project{f / 8 % 25}/doc-{f:D4}.{Extensions[f % Extensions.Length]}";
    public static string RootOf(int source) => SourcePath(source);
    public const int SourcesPerGroup = 20;
    public const int SourcesPerAgent = 2;
    private const int RetentionDays = 14;
    private static readonly string[] Zones = ["Europe/London", "Europe/Berlin", "America/New_York", "UTC", "Asia/Tokyo"];
    private static readonly int[] InitialPacks = [4, 8, 8, 16, 16, 16, 32, 64];
    private const long PackBytes = 16L << 20;

    public YearOfBackups(int dataSources, DateTimeOffset end)
    {
        DataSources = dataSources;
        End = end;
        Start = end.AddDays(-365);
        Groups = (dataSources + SourcesPerGroup - 1) / SourcesPerGroup;
        Agents = (dataSources + SourcesPerAgent - 1) / SourcesPerAgent;
        _policies = [.. Enumerable.Range(0, Groups).Select(GroupPolicy)];
        _recoveryPointTimes = [.. _policies.Select(p => ShortTermCalendar.RecoveryPoints(p.ShortTerm, Start).TakeWhile(t => t < End).ToArray())];
        _onlineTimes = [.. _policies.Select(p => OnlineCalendar.BackupTimes(p.Online, p.ShortTerm.TimeZone, Start).TakeWhile(t => t < End).ToArray())];
    }

    public static int DataSourcesFor(long events) => (int)Math.Max(1, Math.Round(events / (double)EventsPerDataSource));

    public int DataSources { get; }
    public int Groups { get; }
    public int Agents { get; }
    public DateTimeOffset Start { get; }
    public DateTimeOffset End { get; }

    private readonly (ShortTermPolicy ShortTerm, int Kept, OnlinePolicy Online)[] _policies;
    private readonly DateTimeOffset[][] _recoveryPointTimes;
    private readonly DateTimeOffset[][] _onlineTimes;

    public static Guid SourceId(int i) => DeterministicGuid.Create($"catbench:data-source:{i}");
    public static Guid GroupId(int g) => DeterministicGuid.Create($"catbench:group:{g}");
    public static Guid AgentId(int a) => DeterministicGuid.Create($"catbench:agent:{a}");
    private static string SourcePath(int i) => $"/srv/share-{i:D5}";

    private static (ShortTermPolicy, int, OnlinePolicy) GroupPolicy(int g)
    {
        var zone = Zones[g % Zones.Length];
        if (g % 2 == 0)
        {
            var days = Enum.GetValues<DayOfWeek>();
            var st = new ShortTermPolicy(RetentionDays, SynchronisationMode.Interval, 15, [new TimeOnly(8, 0), new TimeOnly(20, 0)], days, zone);
            return (st, PolicyLimits.RecoveryPointsKept(RetentionDays, 2, days),
                new OnlinePolicy([new TimeOnly(21, 0)], OnlineSchedule.Daily, [], new GfsRetention(30, 8, 12, null)));
        }
        DayOfWeek[] weekdays = [DayOfWeek.Monday, DayOfWeek.Tuesday, DayOfWeek.Wednesday, DayOfWeek.Thursday, DayOfWeek.Friday];
        var ws = new ShortTermPolicy(RetentionDays, SynchronisationMode.Interval, 15, [new TimeOnly(12, 0), new TimeOnly(18, 0)], weekdays, zone);
        return (ws, PolicyLimits.RecoveryPointsKept(RetentionDays, 2, weekdays),
            new OnlinePolicy([new TimeOnly(21, 0)], OnlineSchedule.Weekly, [DayOfWeek.Saturday], new GfsRetention(null, 8, 12, null)));
    }

    /// <summary>Every event of the year in time order (ties: by stream and plan order), none at or after <see cref="End"/>.</summary>
    public IEnumerable<Planned> Events()
    {
        var queue = new PriorityQueue<IEnumerator<Planned>, (DateTimeOffset, int)>();
        var timelines = new List<IEnumerable<Planned>> { Setup(), Global() };
        timelines.AddRange(Enumerable.Range(0, DataSources).Select(i => new SourceTimeline(this, i).Events()));
        for (var t = 0; t < timelines.Count; t++)
        {
            var e = timelines[t].GetEnumerator();
            if (e.MoveNext()) queue.Enqueue(e, (e.Current.At, t));
        }
        while (queue.TryDequeue(out var e, out var key))
        {
            yield return e.Current;
            if (e.MoveNext()) queue.Enqueue(e, (e.Current.At, key.Item2));
            else e.Dispose();
        }
    }

    private IEnumerable<Planned> Setup()
    {
        var at = Start.AddHours(-3);
        for (var a = 0; a < Agents; a++)
        {
            var id = AgentId(a);
            yield return new(at, id, new AgentEnrolled(id, $"host-{a:D5}", Hex(new Random(a), 32), DeterministicGuid.Create($"catbench:token:{a}"), at));
        }
        at = Start.AddHours(-2);
        for (var g = 0; g < Groups; g++)
        {
            var id = GroupId(g);
            var (st, kept, online) = _policies[g];
            yield return new(at, id, new ProtectionGroupCreated(id, $"{(g % 2 == 0 ? "servers" : "workstations")}-{g:D3}", at));
            yield return new(at, id, new ShortTermPolicySet(id, st, kept, at));
            yield return new(at, id, new OnlinePolicySet(id, online, at));
            yield return new(at, id, new OnlineThrottlingSet(id, new OnlineThrottling(8192, 65536,
                [DayOfWeek.Monday, DayOfWeek.Tuesday, DayOfWeek.Wednesday, DayOfWeek.Thursday, DayOfWeek.Friday], new TimeOnly(8, 0), new TimeOnly(18, 0)), at));
            yield return new(at, id, new AlertThresholdSet(id, 2, at));
        }
        at = Start.AddHours(-1);
        for (var i = 0; i < DataSources; i++)
        {
            var (id, group, agent) = (SourceId(i), GroupId(i / SourcesPerGroup), AgentId(i / SourcesPerAgent));
            yield return new(at, id, new DataSourceProtected(id, group, agent, DataSourceKind.Folder, SourcePath(i), at));
            yield return new(at, group, new DataSourceAddedToGroup(group, id, agent, DataSourceKind.Folder, SourcePath(i), at));
        }
    }

    /// <summary>The daily consistency check and every group's online backups falling due.</summary>
    private IEnumerable<Planned> Global()
    {
        var all = new List<Planned>();
        for (var day = DateOnly.FromDateTime(Start.UtcDateTime).AddDays(1); ; day = day.AddDays(1))
        {
            var due = new DateTimeOffset(day.ToDateTime(new TimeOnly(2, 0)), TimeSpan.Zero);
            if (due >= End) break;
            var check = ConsistencyCheck.DueId(day);
            var packs = DataSources * 40;
            all.Add(new(due, check, new ConsistencyCheckDue(check, day, due)));
            all.Add(new(due.AddMinutes(35), check, new ConsistencyCheckCompleted(check, "daily", packs, packs * PackBytes, [], [], [], [], [], due.AddMinutes(35))));
        }
        for (var g = 0; g < Groups; g++)
            foreach (var at in _onlineTimes[g])
            {
                var id = OnlineCalendar.OnlineBackupDueId(GroupId(g), at);
                all.Add(new(at, id, new OnlineBackupDue(id, GroupId(g), at)));
            }
        return all.Where(p => p.At < End).OrderBy(p => p.At);
    }

    internal static string Hex(Random random, int bytes)
    {
        Span<byte> b = stackalloc byte[bytes];
        random.NextBytes(b);
        return Convert.ToHexStringLower(b);
    }

    internal static Guid NewId(Random random)
    {
        Span<byte> b = stackalloc byte[16];
        random.NextBytes(b);
        b[6] = (byte)((b[6] & 0x0F) | 0x40);
        b[8] = (byte)((b[8] & 0x3F) | 0x80);
        return new Guid(b, bigEndian: true);
    }

    /// <summary>One data source's year: its backup runs, online copies, expiries, checks and restores, in time order.</summary>
    private sealed class SourceTimeline(YearOfBackups year, int index)
    {
        private readonly Random _random = new(1_000_003 * index + 17);
        private readonly Guid _source = SourceId(index);
        private readonly int _groupIndex = index / SourcesPerGroup;
        private readonly Guid _group = GroupId(index / SourcesPerGroup);
        private readonly Guid _agent = AgentId(index / SourcesPerAgent);
        private readonly PriorityQueue<Planned, (DateTimeOffset, long)> _pending = new();
        private long _order;
        private readonly List<(string Id, long Bytes)> _referenced = [];
        private readonly List<(string Id, long Bytes)> _notInVault = [];
        private int _baseline;
        private (Guid Id, DateTimeOffset CreatedAt, int Packs, bool Copied)? _latest;
        private int _restores;
        private int _catalogued;
        private readonly Dictionary<int, (long Size, DateTimeOffset ModifiedAt)> _files = [];

        private void Add(DateTimeOffset at, Guid stream, object e) => _pending.Enqueue(new Planned(at, stream, e), (at, _order++));

        public IEnumerable<Planned> Events()
        {
            var policy = year._policies[_groupIndex];
            var work = new List<(DateTimeOffset At, int Kind)>();
            work.AddRange(year._recoveryPointTimes[_groupIndex].Select(t => (t, 0)));
            work.AddRange(year._onlineTimes[_groupIndex].Select(t => (t, 1)));
            // A weekly spot check of the latest point, at a time of its own; a restore every quarter.
            for (var at = year.Start.AddDays(index % 7 + 1).AddHours(10).AddMinutes(index % 360); at < year.End; at = at.AddDays(7)) work.Add((at, 2));
            for (var at = year.Start.AddDays(index % 91 + 3).AddHours(14).AddMinutes(index % 180); at < year.End; at = at.AddDays(91)) work.Add((at, 3));
            work.Sort((a, b) => a.At.CompareTo(b.At));

            var first = true;
            foreach (var (at, kind) in work)
            {
                while (_pending.TryPeek(out var next, out _) && next.At < at) yield return _pending.Dequeue();
                switch (kind)
                {
                    case 0: Backup(at, first); first = false; break;
                    case 1: CopyToVault(at, policy.Online, policy.ShortTerm.TimeZone); break;
                    case 2: SpotCheck(at); break;
                    case 3: RestoreSome(at); break;
                }
            }
            while (_pending.TryDequeue(out var next, out _))
                if (next.At < year.End) yield return next;
        }

        private void Backup(DateTimeOffset due, bool initial)
        {
            var rp = ShortTermCalendar.BackupDueId(_group, _source, due);
            Add(due, rp, new BackupRequested(rp, _source, _group, _agent, SourcePath(index), "scheduler", due));
            var at = due.AddSeconds(3 + _random.Next(40));
            Add(at, rp, new BackupStarted(rp, _agent, at));
            if (_random.NextDouble() < 0.004)
            {
                at = at.AddMinutes(2);
                Add(at, rp, new JobLeaseExpired(rp, _agent, 1, "lease expired: no heartbeat for 120 s", at));
                Add(at, rp, new JobRequeued(rp, _agent, 1, at.AddSeconds(30), at));
                at = at.AddSeconds(31 + _random.Next(20));
                Add(at, rp, new BackupStarted(rp, _agent, at));
            }
            var packs = initial ? InitialPacks[_random.Next(InitialPacks.Length)] : _random.NextDouble() switch { < 0.85 => 1, < 0.98 => 2, _ => 3 + _random.Next(3) };
            if (_random.NextDouble() < 0.015)
            {
                for (var p = 0; p < packs / 2; p++) WritePack(rp, ref at);
                at = at.AddSeconds(5 + _random.Next(60));
                Add(at, rp, new RecoveryPointFailed(rp, _random.Next(3) switch
                {
                    0 => "agent reported: the protected folder is not reachable (I/O error)",
                    1 => "agent lost: lease expired 3 times",
                    _ => "agent reported: upload refused: 507 the backup server's disk is full",
                }, at));
                return;
            }
            var written = new List<(string, long)>();
            for (var p = 0; p < packs; p++) written.Add(WritePack(rp, ref at));
            if (initial) _baseline = packs;
            // The referenced set slides: new packs hold the changed files, the oldest packs' data is superseded.
            _referenced.AddRange(written);
            _notInVault.AddRange(written);
            if (!initial && _referenced.Count > _baseline + 2) _referenced.RemoveRange(0, Math.Min(written.Count, _referenced.Count - _baseline));
            var skipped = 0;
            if (_random.NextDouble() < 0.02)
            {
                skipped = 1 + _random.Next(3);
                at = at.AddSeconds(1);
                Add(at, rp, new BackupItemsSkipped(rp, [.. Enumerable.Range(0, skipped).Select(s => new SkippedItemRecord(
                    $"users/u{_random.Next(200)}/outlook-{s}.pst", "The process cannot access the file because it is being used by another process."))], skipped, at));
            }
            at = at.AddSeconds(2);
            var bytesStored = _referenced.Sum(p => p.Bytes);
            Add(at, rp, new RecoveryPointCreated(rp, _source, 20_000 + _random.Next(80_000), 1_000 + _random.Next(4_000), skipped,
                bytesStored + (initial ? 0 : bytesStored / 3), bytesStored, [.. _referenced.Select(p => p.Id)], Hex(_random, 32), at));
            Catalogue(rp, at, initial);
            _latest = (rp, at, _referenced.Count, false);
            // The retention worker's hourly round after the point leaves the 14-day range.
            var expiry = at.AddDays(RetentionDays);
            expiry = new DateTimeOffset(expiry.Year, expiry.Month, expiry.Day, expiry.Hour, 0, 0, TimeSpan.Zero).AddHours(1).AddMinutes(_random.Next(5));
            Add(expiry, rp, new RecoveryPointExpired(rp, StorageTier.Disk, $"older than the short-term range of {RetentionDays} days", expiry));
        }

        /// <summary>What the commit's diff against the previous catalogued point records: the whole tree first, then the changed files.</summary>
        private void Catalogue(Guid rp, DateTimeOffset at, bool initial)
        {
            _catalogued++;
            var added = new List<CataloguedItem>();
            var removed = new List<string>();
            // The whole tree the first time a point is catalogued (the source's first backup may have failed).
            if (initial || _files.Count == 0)
            {
                foreach (var folder in Enumerable.Range(0, FilesPerSource).Select(FilePath).Select(p => p[..p.LastIndexOf('/')]).Distinct())
                {
                    added.Add(new CataloguedItem(folder[..folder.IndexOf('/')], EntryKind.Directory, 0, at.AddDays(-400)));
                    added.Add(new CataloguedItem(folder, EntryKind.Directory, 0, at.AddDays(-400)));
                }
                added = [.. added.DistinctBy(i => i.Path)];
                for (var f = 0; f < FilesPerSource; f++)
                {
                    _files[f] = (1_000 + _random.Next(50_000_000), Micro(at.AddDays(-_random.Next(1, 900)).AddSeconds(_random.Next(86_400))));
                    added.Add(new CataloguedItem(FilePath(f), EntryKind.File, _files[f].Size, _files[f].ModifiedAt));
                }
            }
            else
            {
                foreach (var f in Enumerable.Range(0, 1 + _random.Next(8)).Select(_ => _random.Next(FilesPerSource)).Distinct())
                {
                    _files[f] = (_files[f].Size + _random.Next(-1_000, 100_000), Micro(at.AddMinutes(-_random.Next(1, 600))));
                    removed.Add(FilePath(f));
                    added.Add(new CataloguedItem(FilePath(f), EntryKind.File, Math.Max(0, _files[f].Size), _files[f].ModifiedAt));
                }
            }
            Add(at, ItemCatalog.StreamId(rp), new ItemsCatalogued(rp, _source, _catalogued, SourcePath(index), at, added, removed));
        }

        private static DateTimeOffset Micro(DateTimeOffset at) => new(at.UtcTicks - at.UtcTicks % 10, TimeSpan.Zero);

        private (string, long) WritePack(Guid rp, ref DateTimeOffset at)
        {
            var id = Hex(_random, 32);
            var bytes = PackBytes - _random.Next(1 << 20);
            at = at.AddSeconds(2 + _random.Next(6));
            Add(at, rp, new PackWrittenToDisk(rp, id, bytes, 12 + _random.Next(20), id, at));
            return (id, bytes);
        }

        private void CopyToVault(DateTimeOffset due, OnlinePolicy online, string zone)
        {
            if (_latest is not { Copied: false } latest || latest.CreatedAt >= due) return;
            _latest = latest with { Copied = true };
            var rp = latest.Id;
            var transfer = VaultTransfer.IdFor(rp);
            var at = due.AddSeconds(2 + _random.Next(30));
            var uploads = _notInVault.ToList();
            _notInVault.Clear();
            Add(at, transfer, new VaultTransferStarted(transfer, rp, latest.Packs, at));
            var failAfter = _random.NextDouble() < 0.01 ? _random.Next(uploads.Count) : -1;
            for (var p = 0; p < uploads.Count; p++)
            {
                if (p == failAfter)
                {
                    at = at.AddSeconds(30);
                    Add(at, transfer, new VaultTransferFailed(transfer, rp, "vault: 503 Server Busy (the request was retried 5 times)", at));
                    at = at.AddMinutes(10);
                    Add(at, transfer, new VaultTransferStarted(transfer, rp, latest.Packs, at));
                }
                at = at.AddSeconds(8 + _random.Next(8));
                Add(at, transfer, new PackUploadedToVault(transfer, rp, uploads[p].Id, uploads[p].Bytes, at));
            }
            at = at.AddSeconds(1);
            Add(at, transfer, new VaultTransferCompleted(transfer, rp, latest.Packs, uploads.Sum(p => p.Bytes), at));

            // GFS: kept as a daily copy, the week's last copy 8 weeks, the month's last copy 12 months; expired at the next hourly round after.
            var local = TimeZoneInfo.ConvertTime(due, TimeZoneInfo.FindSystemTimeZoneById(zone));
            var keep = online.Retention.DailyDays is { } daily ? due.AddDays(daily) : due;
            var weekEnds = online.Schedule == OnlineSchedule.Weekly || local.DayOfWeek == DayOfWeek.Sunday;
            if (weekEnds) keep = Max(keep, due.AddDays(7 * online.Retention.WeeklyWeeks!.Value));
            var monthEnds = online.Schedule == OnlineSchedule.Weekly ? local.AddDays(7).Month != local.Month : local.AddDays(1).Month != local.Month;
            if (monthEnds) keep = Max(keep, due.AddMonths(online.Retention.MonthlyMonths!.Value));
            var expiry = new DateTimeOffset(keep.Year, keep.Month, keep.Day, keep.Hour, 0, 0, TimeSpan.Zero).AddHours(1).AddMinutes(_random.Next(5));
            Add(expiry, rp, new RecoveryPointExpired(rp, StorageTier.Vault, "beyond the online policy's GFS retention", expiry));
        }

        private static DateTimeOffset Max(DateTimeOffset a, DateTimeOffset b) => a > b ? a : b;

        private void SpotCheck(DateTimeOffset at)
        {
            if (_latest is not { } latest || latest.CreatedAt >= at) return;
            var bytes = (long)latest.Packs * PackBytes;
            if (_random.NextDouble() < 0.005)
            {
                var pack = _referenced.Count > 0 ? _referenced[_random.Next(_referenced.Count)].Id : Hex(_random, 32);
                Add(at, latest.Id, new RecoveryPointChecked(latest.Id, StorageTier.Disk, latest.Packs, bytes,
                    [new DamagedPack(pack, "SHA-256 of the pack file does not match its id")], "user:auditor", at));
                var repaired = at.AddDays(1).Date.AddHours(2).AddMinutes(40);
                var when = new DateTimeOffset(repaired, TimeSpan.Zero);
                Add(when, latest.Id, new RecoveryPointChecked(latest.Id, StorageTier.Disk, latest.Packs, bytes, [], "worker:consistency-check", when));
                return;
            }
            Add(at, latest.Id, new RecoveryPointChecked(latest.Id, StorageTier.Disk, latest.Packs, bytes, [], "user:auditor", at));
        }

        private void RestoreSome(DateTimeOffset at)
        {
            if (_latest is not { } latest || latest.CreatedAt >= at) return;
            var id = NewId(_random);
            _restores++;
            Add(at, id, new RestoreRequested(id, latest.Id, _source, _agent, StorageTier.Disk, $"/restore/share-{index:D5}-{_restores}", "user:operator",
                at, [$"finance/2026/q{_restores}-report.xlsx", "hr/policies"], ExistingItems.KeepBoth));
            var started = at.AddSeconds(5 + _random.Next(30));
            Add(started, id, new RestoreStarted(id, _agent, started));
            var done = started.AddSeconds(30 + _random.Next(300));
            Add(done, id, new RestoreCompleted(id, latest.Id, 1 + _random.Next(500), _random.Next(1 << 30), done));
        }
    }
}
