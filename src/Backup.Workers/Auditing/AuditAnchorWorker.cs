using Backup.Projections.Auditing;
using Backup.Storage.Vault;
using Marten;
using Microsoft.Extensions.Options;

namespace Backup.Workers.Auditing;

public sealed class AuditAnchorOptions
{
    public const string Section = "Backup:AuditAnchor";

    /// <summary>How often the chain's head is published to the vault (when it moved).</summary>
    public TimeSpan Interval { get; set; } = TimeSpan.FromMinutes(5);
}

/// <summary>
/// Anchors the audit chain outside the database: at each tick the newest link (sequence and hash) is written to the vault
/// as a blob that is never overwritten. Someone able to rewrite the events and recompute every link in PostgreSQL still
/// cannot change what the vault holds, so <c>GET /api/audit/verify</c> catches that rewrite at the first anchor it reaches.
/// </summary>
public sealed class AuditAnchorWorker(IServiceProvider services, VaultStore vault, TimeProvider clock, IOptions<AuditAnchorOptions> options, ILogger<AuditAnchorWorker> log)
    : BackgroundService
{
    private long _anchored;

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        PeriodicWork.RunAsync(clock, options.Value.Interval, async (now, ct) => await AnchorAsync(now, ct), log,
            "Anchoring the audit chain", stoppingToken,
            new Leadership(services, "audit anchor", log));

    /// <summary>Writes the current head when it is newer than the last one this worker wrote; returns it, or null.</summary>
    public async Task<AuditAnchor?> AnchorAsync(DateTimeOffset now, CancellationToken ct)
    {
        await using var session = services.GetRequiredService<IDocumentStore>().QuerySession();
        var head = await session.Query<AuditLink>().OrderByDescending(l => l.Id).FirstOrDefaultAsync(ct);
        if (head is null || head.Id <= _anchored) return null;
        var anchor = new AuditAnchor(head.Id, head.Hash, now);
        await vault.AnchorAuditHeadAsync(anchor, ct);
        _anchored = head.Id;
        return anchor;
    }
}
