using System.Text.Json;
using System.Text.Json.Serialization;
using Backup.Commands.CheckingRecoveryPoints;
using Backup.Commands.DataSources;
using Backup.Commands.ProtectionGroups;
using Backup.Commands.RecoveryPoints;
using Backup.Commands.Restores;
using Backup.Commands.VaultTransfers;
using JasperFx.Events;
using Marten;
using Marten.Events.Projections;
using Weasel.Postgresql;
using Weasel.Postgresql.Tables;

namespace Backup.Projections.Compliance;

/// <summary>The facts of one data source as they stand after the last event the projection applied (the head of its history).</summary>
public sealed class ComplianceSource
{
    public Guid Id { get; set; }
    public Guid GroupId { get; set; }
    public long Sequence { get; set; }
    public DateTimeOffset ValidFrom { get; set; }
    public ComplianceFacts Facts { get; set; } = new();
}

/// <summary>A protection group's policies and members as the compliance projection has seen them so far.</summary>
public sealed class ComplianceGroup
{
    public Guid Id { get; set; }
    public ShortTermPolicy? ShortTerm { get; set; }
    public int? RecoveryPointsKeptOnDisk { get; set; }
    public DateTimeOffset? ShortTermSetAt { get; set; }
    public OnlinePolicy? Online { get; set; }
    public DateTimeOffset? OnlineSetAt { get; set; }
    public List<Guid> DataSourceIds { get; set; } = [];
}

/// <summary>Which data source a created recovery point belongs to: expiries, checks and vault copies name only the point.</summary>
public sealed class ComplianceRecoveryPoint
{
    public Guid Id { get; set; }
    public Guid DataSourceId { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
}

/// <summary>
/// Temporal compliance state. For every event that changes what compliance depends on (protection, a policy, a recovery point
/// created, expired, copied to the vault or checked), it appends the data source's new <see cref="ComplianceFacts"/> to
/// <c>compliance_snapshot</c>, stamped <c>valid_from</c> with the event's own time (never earlier than the previous stamp of
/// that data source) and its global sequence. Compliance at T is then one index probe per data source: the latest row with
/// <c>valid_from ≤ T</c> (primary key <c>data_source_id, valid_from, sequence</c>), evaluated at T; no raw event is read.
/// Rows are only ever appended, so what was valid at a past instant stays as it was.
/// <para><c>kind</c> says what changed: <c>protected</c>, <c>policy</c>, <c>created</c>, <c>expired</c>, <c>vault</c>, <c>removed</c>
/// (from protection), or <c>consistency</c> (a check, or an expiry that drops a damaged copy); the period report reads the rare kinds and the
/// <c>created</c> stamps only.</para>
/// <para>A raw <see cref="IProjection"/> because one event fans out to many data sources (a group's policy) and events name a
/// recovery point rather than its data source; the daemon builds and commits each page before the next, so the heads loaded
/// here are those the previous page stored.</para>
/// </summary>
public sealed class ComplianceProjection : IProjection
{
    public const string Name = "compliance";
    public const string TableName = "compliance_snapshot";

    /// <summary>How snapshot rows are written and read: absent members are left out of a row rather than written as null.</summary>
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        Converters = { new JsonStringEnumConverter() },
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    private readonly string _table;

    public ComplianceProjection(string schema) => _table = $"{schema}.{TableName}";

    public static Table SnapshotTable(string schema)
    {
        var table = new Table(new PostgresqlObjectName(schema, TableName, SchemaUtils.IdentifierUsage.General));
        table.AddColumn<Guid>("data_source_id").AsPrimaryKey();
        table.AddColumn("valid_from", "timestamp with time zone").AsPrimaryKey();
        table.AddColumn<long>("sequence").AsPrimaryKey();
        table.AddColumn<Guid>("group_id").NotNull();
        table.AddColumn<string>("kind").NotNull();
        // json, not jsonb: a row is written once and read whole (as text, for the API to parse), so PostgreSQL only checks its
        // syntax on the way in and hands the text back on the way out; jsonb would be built on insert and printed on every read.
        // The period report's few member reads (facts->'x') work on json too.
        table.AddColumn("facts", "json").NotNull();
        return table;
    }

    public async Task ApplyAsync(IDocumentOperations operations, IReadOnlyList<IEvent> events, CancellationToken cancellation)
    {
        var groupIds = new HashSet<Guid>();
        var policyGroups = new HashSet<Guid>();
        var sourceIds = new HashSet<Guid>();
        var pointIds = new HashSet<Guid>();
        foreach (var e in events)
        {
            switch (e.Data)
            {
                case ProtectionGroupCreated x: groupIds.Add(x.GroupId); break;
                case ShortTermPolicySet x: groupIds.Add(x.GroupId); policyGroups.Add(x.GroupId); break;
                case OnlinePolicySet x: groupIds.Add(x.GroupId); policyGroups.Add(x.GroupId); break;
                case DataSourceProtected x: groupIds.Add(x.GroupId); sourceIds.Add(x.DataSourceId); break;
                case DataSourceRemoved x: groupIds.Add(x.GroupId); sourceIds.Add(x.DataSourceId); break;
                case RecoveryPointCreated x: sourceIds.Add(x.DataSourceId); break;
                case RecoveryPointExpired x: pointIds.Add(x.RecoveryPointId); break;
                case RecoveryPointChecked x: pointIds.Add(x.RecoveryPointId); break;
                case VaultTransferCompleted x: pointIds.Add(x.RecoveryPointId); break;
            }
        }
        if (groupIds.Count == 0 && sourceIds.Count == 0 && pointIds.Count == 0) return;

        var groups = groupIds.Count == 0 ? [] : (await operations.LoadManyAsync<ComplianceGroup>(cancellation, groupIds)).ToDictionary(g => g.Id);
        var points = pointIds.Count == 0 ? [] : (await operations.LoadManyAsync<ComplianceRecoveryPoint>(cancellation, pointIds)).ToDictionary(p => p.Id);
        foreach (var id in policyGroups)
            if (groups.TryGetValue(id, out var group)) sourceIds.UnionWith(group.DataSourceIds);
        sourceIds.UnionWith(points.Values.Select(p => p.DataSourceId));
        var sources = sourceIds.Count == 0 ? [] : (await operations.LoadManyAsync<ComplianceSource>(cancellation, sourceIds)).ToDictionary(s => s.Id);

        var changedGroups = new HashSet<Guid>();
        var changedSources = new HashSet<Guid>();
        var newPoints = new List<ComplianceRecoveryPoint>();
        var rows = new Rows();

        void Change(Guid dataSourceId, IEvent e, DateTimeOffset at, string kind, Func<ComplianceFacts, ComplianceFacts> change)
        {
            if (!sources.TryGetValue(dataSourceId, out var source) || source.Sequence >= e.Sequence) return;
            var facts = change(source.Facts);
            if (facts == source.Facts) return;
            source.Facts = facts;
            source.Sequence = e.Sequence;
            if (at > source.ValidFrom) source.ValidFrom = at;
            changedSources.Add(dataSourceId);
            rows.Add(dataSourceId, source.ValidFrom.ToUniversalTime(), e.Sequence, source.GroupId, kind, JsonSerializer.Serialize(facts.ForSnapshot(), Json));
        }

        foreach (var e in events)
        {
            switch (e.Data)
            {
                case ProtectionGroupCreated x when !groups.ContainsKey(x.GroupId):
                    groups[x.GroupId] = new ComplianceGroup { Id = x.GroupId };
                    changedGroups.Add(x.GroupId);
                    break;

                case ShortTermPolicySet x when groups.TryGetValue(x.GroupId, out var group):
                    group.ShortTerm = x.Policy;
                    group.RecoveryPointsKeptOnDisk = x.RecoveryPointsKeptOnDisk;
                    group.ShortTermSetAt = x.SetAt;
                    changedGroups.Add(group.Id);
                    foreach (var ds in group.DataSourceIds)
                        Change(ds, e, x.SetAt, "policy", f => f with { ShortTerm = x.Policy, RecoveryPointsKeptOnDisk = x.RecoveryPointsKeptOnDisk, ShortTermSetAt = x.SetAt });
                    break;

                case OnlinePolicySet x when groups.TryGetValue(x.GroupId, out var group):
                    group.Online = x.Policy;
                    group.OnlineSetAt = x.SetAt;
                    changedGroups.Add(group.Id);
                    foreach (var ds in group.DataSourceIds)
                        Change(ds, e, x.SetAt, "policy", f => f with { Online = x.Policy, OnlineSetAt = x.SetAt });
                    break;

                case DataSourceProtected x when !sources.ContainsKey(x.DataSourceId):
                {
                    groups.TryGetValue(x.GroupId, out var group);
                    if (group is not null && !group.DataSourceIds.Contains(x.DataSourceId))
                    {
                        group.DataSourceIds.Add(x.DataSourceId);
                        changedGroups.Add(group.Id);
                    }
                    sources[x.DataSourceId] = new ComplianceSource { Id = x.DataSourceId, GroupId = x.GroupId, ValidFrom = x.ProtectedAt };
                    Change(x.DataSourceId, e, x.ProtectedAt, "protected", _ => new ComplianceFacts
                    {
                        DataSourceId = x.DataSourceId, GroupId = x.GroupId, AgentId = x.AgentId, Path = x.Path, ProtectedAt = x.ProtectedAt,
                        ShortTerm = group?.ShortTerm, RecoveryPointsKeptOnDisk = group?.RecoveryPointsKeptOnDisk, ShortTermSetAt = group?.ShortTermSetAt,
                        Online = group?.Online, OnlineSetAt = group?.OnlineSetAt,
                    });
                    break;
                }

                // Out of protection from then on: no longer reported now, nor as of any later instant (ComplianceHeads.Evaluate);
                // a group's later policies no longer reach it. As of an earlier instant it is reported as it stood then.
                case DataSourceRemoved x:
                    if (groups.TryGetValue(x.GroupId, out var from) && from.DataSourceIds.Remove(x.DataSourceId)) changedGroups.Add(from.Id);
                    Change(x.DataSourceId, e, x.RemovedAt, "removed", f => f.RemovedAt is null ? f with { RemovedAt = x.RemovedAt } : f);
                    break;

                case RecoveryPointCreated x:
                    if (!points.ContainsKey(x.RecoveryPointId))
                    {
                        var point = new ComplianceRecoveryPoint { Id = x.RecoveryPointId, DataSourceId = x.DataSourceId, CreatedAt = x.CreatedAt };
                        points[point.Id] = point;
                        newPoints.Add(point);
                    }
                    Change(x.DataSourceId, e, x.CreatedAt, "created", f => f with
                    {
                        LastRecoveryPointId = f.LastRecoveryPointAt is { } last && last > x.CreatedAt ? f.LastRecoveryPointId : x.RecoveryPointId,
                        LastRecoveryPointAt = f.LastRecoveryPointAt is { } at && at > x.CreatedAt ? at : x.CreatedAt,
                        OnDisk = [.. f.OnDisk.Append(new HeldPoint(x.RecoveryPointId, x.CreatedAt)).OrderBy(p => p.CreatedAt).ThenBy(p => p.Id)],
                    });
                    break;

                case RecoveryPointExpired x when points.TryGetValue(x.RecoveryPointId, out var point):
                    var repaired = sources.TryGetValue(point.DataSourceId, out var owner)
                        && owner.Facts.Damaged.Any(d => d.RecoveryPointId == x.RecoveryPointId && d.Tier == x.Tier);
                    Change(point.DataSourceId, e, x.ExpiredAt, repaired ? "consistency" : "expired", f =>
                        !f.Damaged.Any(d => d.RecoveryPointId == x.RecoveryPointId && d.Tier == x.Tier)
                        && (x.Tier != StorageTier.Disk || !f.OnDisk.Any(p => p.Id == x.RecoveryPointId))
                            ? f
                            : f with
                            {
                                OnDisk = x.Tier == StorageTier.Disk ? [.. f.OnDisk.Where(p => p.Id != x.RecoveryPointId)] : f.OnDisk,
                                Damaged = [.. f.Damaged.Where(d => !(d.RecoveryPointId == x.RecoveryPointId && d.Tier == x.Tier))],
                            });
                    break;

                case VaultTransferCompleted x when points.TryGetValue(x.RecoveryPointId, out var point):
                    Change(point.DataSourceId, e, x.CompletedAt, "vault", f => f.NewestVaultPointCreatedAt is { } newest && newest >= point.CreatedAt
                        ? f
                        : f with { NewestVaultPointCreatedAt = point.CreatedAt, NewestVaultCopyAt = x.CompletedAt });
                    break;

                case RecoveryPointChecked x when points.TryGetValue(x.RecoveryPointId, out var point):
                {
                    var tier = x.Tier;
                    Change(point.DataSourceId, e, x.CheckedAt, "consistency", f =>
                    {
                        var others = f.Damaged.Where(d => !(d.RecoveryPointId == x.RecoveryPointId && d.Tier == tier)).ToList();
                        var before = f.Damaged.FirstOrDefault(d => d.RecoveryPointId == x.RecoveryPointId && d.Tier == tier);
                        if (x.Damaged.Count == 0)
                            return before is null ? f : f with { Damaged = others };
                        // Still damaged: inconsistent since the first check that found it, whatever later checks say of the packs.
                        return before is not null && before.DamagedPacks == x.Damaged.Count
                            ? f
                            : f with { Damaged = [.. others, new InconsistentCopy(x.RecoveryPointId, tier, x.Damaged.Count, before?.Since ?? x.CheckedAt)] };
                    });
                    break;
                }
            }
        }

        // The page's rows in one statement (arrays unnested), not one insert each: the rebuild writes millions.
        if (rows.Count > 0)
            operations.QueueSqlCommand(
                $"insert into {_table} (data_source_id, valid_from, sequence, group_id, kind, facts) "
                + "select * from unnest(?::uuid[], ?::timestamptz[], ?::bigint[], ?::uuid[], ?::text[], ?::json[]) on conflict do nothing",
                rows.DataSourceIds.ToArray(), rows.ValidFrom.ToArray(), rows.Sequences.ToArray(), rows.GroupIds.ToArray(), rows.Kinds.ToArray(),
                rows.Facts.ToArray());
        foreach (var id in changedGroups) operations.Store(groups[id]);
        foreach (var id in changedSources) operations.Store(sources[id]);
        foreach (var point in newPoints) operations.Store(point);
    }

    /// <summary>The snapshot rows of one page, column by column.</summary>
    private sealed class Rows
    {
        public List<Guid> DataSourceIds { get; } = [];
        public List<DateTimeOffset> ValidFrom { get; } = [];
        public List<long> Sequences { get; } = [];
        public List<Guid> GroupIds { get; } = [];
        public List<string> Kinds { get; } = [];
        public List<string> Facts { get; } = [];
        public int Count => Sequences.Count;

        public void Add(Guid dataSourceId, DateTimeOffset validFrom, long sequence, Guid groupId, string kind, string facts)
        {
            DataSourceIds.Add(dataSourceId);
            ValidFrom.Add(validFrom);
            Sequences.Add(sequence);
            GroupIds.Add(groupId);
            Kinds.Add(kind);
            Facts.Add(facts);
        }
    }
}
