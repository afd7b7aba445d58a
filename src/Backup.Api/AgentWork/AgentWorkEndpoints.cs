using System.Security.Claims;
using Backup.Api.Infrastructure;
using Backup.Commands.CollectingGarbage;
using Backup.Commands.Common;
using Backup.Commands.Dispatching;
using Backup.Commands.RecoveryPoints;
using Backup.Commands.Repository;
using Backup.Storage.Contracts;
using Backup.Storage.Crypto;
using Backup.Storage.Disk;
using Backup.Storage.Format;
using Marten;
using Mediator;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace Backup.Api.AgentWork;

/// <summary>
/// What agents call, whatever the job: their job queue (claim, heartbeat, release), the repository's key file and the
/// chunks the server holds. Each kind of job adds its own routes (<see cref="BackupJobEndpoints"/>,
/// <see cref="SyncJobEndpoints"/>, <see cref="RestoreJobEndpoints"/>); these only translate HTTP into commands.
/// </summary>
public static class AgentWorkEndpoints
{
    public static IEndpointRouteBuilder MapAgentWork(this IEndpointRouteBuilder app)
    {
        var work = app.MapGroup("/api/agents/{agentId:guid}").WithTags("Agent work").RequireAuthorization(AgentAuthenticationHandler.Policy);
        work.MapPost("/jobs/next", NextJob)
            .WithSummary("Claim this agent's next job (204 when there is none)")
            .WithDescription($"With ?wait=N (seconds, at most {MaxPollWaitSeconds}) an idle agent's poll is held until a job is queued for it, "
                + $"answered with that job at once, or 204 after N seconds (sooner when the server stops); a held poll's 204 carries {AgentHeaders.PollHeld}.");
        work.MapPost("/jobs/{jobId:guid}/heartbeat", Heartbeat)
            .WithSummary("Renew the lease of the job this agent is running")
            .WithDescription("Agents send it every third of the lease. 404 unknown job, 403 another agent's job, 409 the job is not running (e.g. its lease already expired).");
        work.MapPost("/jobs/{jobId:guid}/release", Release)
            .WithSummary("Give back the job this agent is running (the agent is stopping): it is queued again at once")
            .WithDescription("Optional body {\"reason\"} (default \"agent stopping\"). Costs no attempt and no backoff, unlike a lease that runs out. "
                + "404 unknown job, 403 another agent's job, 409 the job is not running (already ended, or its lease expired).");
        work.MapGet("/key", KeyFile)
            .WithSummary("The repository's key file (master keys wrapped under the passphrase), for the agent to unwrap locally")
            .WithDescription("404 while no key has been created (PUT /api/repository/key).");
        work.MapGet("/chunks", KnownChunks)
            .WithSummary("Every chunk id the server holds, 32 raw bytes each, so the agent uploads only new chunks");
        work.MapBackupJobs();
        work.MapSyncJobs();
        work.MapRestoreJobs();
        return app;
    }

    /// <summary>The longest an agent's poll is held; well inside proxies' and HttpClient's usual timeouts (100 s).</summary>
    public const int MaxPollWaitSeconds = 60;

    /// <summary>
    /// Claims the agent's next job; with <paramref name="wait"/>, an idle agent's poll is held until a job is queued for it
    /// (<see cref="JobArrivals"/>, fed by PostgreSQL notifications whichever process queued the job), until a re-queued job's
    /// backoff ends, or until the wait or the server's life ends. The signal is taken before each look at the queue, so a job
    /// queued while the poll looks is not missed.
    /// </summary>
    private static async Task<Results<Ok<AgentJob>, NoContent>> NextJob(
        Guid agentId, int? wait, HttpContext http, IMediator m, JobArrivals arrivals, IHostApplicationLifetime host, IQuerySession query,
        IOptions<JobLeaseOptions> leases, TimeProvider clock, CancellationToken ct)
    {
        http.User.RequireSelf(agentId);
        if (wait is < 0 or > MaxPollWaitSeconds)
            throw new FluentValidation.ValidationException([new FluentValidation.Results.ValidationFailure("wait", $"'wait' must be 0 to {MaxPollWaitSeconds} seconds.")]);
        var held = Held(TimeSpan.FromSeconds(wait ?? 0), clock);
        var until = TimeProvider.System.GetTimestamp();
        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(ct, host.ApplicationStopping);
        while (true)
        {
            var arrival = held > TimeSpan.Zero ? arrivals.Next(agentId) : Task.CompletedTask;
            var job = await m.Send(new ClaimNextJob(agentId), ct);
            if (job is not null)
                return TypedResults.Ok(new AgentJob(job.Id, job.Kind, job.RecoveryPointId, job.Path, job.Paths, job.IfExists,
                    LeaseSeconds(leases.Value.Duration, clock), job.Include, job.Exclude));
            var left = held - TimeProvider.System.GetElapsedTime(until);
            if (left <= TimeSpan.Zero || stopping.IsCancellationRequested) break;
            var backoffEnds = await UntilBackoffEndsAsync(query, agentId, clock, ct);
            var hold = backoffEnds is { } b && b < left ? b : left;
            try
            {
                await arrival.WaitAsync(hold, stopping.Token);
            }
            catch (TimeoutException) when (hold == left)
            {
                // The whole wait passed without a job (the claim just above recorded this poll's contact, LastPolledAt).
                break;
            }
            catch (TimeoutException)
            {
                // A re-queued job's backoff ended: look again.
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                break; // the server is stopping: answer now rather than hold its shutdown
            }
        }
        if (held > TimeSpan.Zero) http.Response.Headers[AgentHeaders.PollHeld] = ((int)held.TotalSeconds).ToString(System.Globalization.CultureInfo.InvariantCulture);
        return TypedResults.NoContent();
    }

    /// <summary>
    /// How long a poll is held, in real time. Under a fast test clock (<see cref="ClockOptions"/>) it is shorter by the clock's
    /// speed (at least a second), so the agent's polls, which record that it is alive, stay as frequent in the server's time.
    /// </summary>
    private static TimeSpan Held(TimeSpan wait, TimeProvider clock) =>
        wait > TimeSpan.Zero && clock is ScaledTimeProvider scaled ? TimeSpan.FromTicks(Math.Min(wait.Ticks, Math.Max(TimeSpan.TicksPerSecond, (long)(wait.Ticks / scaled.Speed)))) : wait;

    /// <summary>Real time until the earliest re-queued job of the agent may be handed out (null when none waits for its backoff).</summary>
    private static async Task<TimeSpan?> UntilBackoffEndsAsync(IQuerySession query, Guid agentId, TimeProvider clock, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var next = await query.Query<QueuedJob>()
            .Where(j => j.AgentId == agentId && j.State == QueuedJobState.Queued && j.NotBefore != null && j.NotBefore > now)
            .OrderBy(j => j.NotBefore).FirstOrDefaultAsync(ct);
        if (next?.NotBefore is not { } at) return null;
        var ahead = at - now;
        return clock is ScaledTimeProvider scaled ? ahead / scaled.Speed : ahead;
    }

    /// <summary>
    /// The lease in the agent's seconds: the agent's clock is real time, so under a fast test clock (<see cref="ClockOptions"/>)
    /// the lease it must heartbeat within is shorter by the clock's speed (at least a second).
    /// </summary>
    private static int LeaseSeconds(TimeSpan lease, TimeProvider clock) =>
        (int)Math.Max(1, (clock is ScaledTimeProvider scaled ? lease / scaled.Speed : lease).TotalSeconds);

    private static async Task<Ok<JobLeaseRenewal>> Heartbeat(Guid agentId, Guid jobId, ClaimsPrincipal user, IMediator m, CancellationToken ct) =>
        TypedResults.Ok(new JobLeaseRenewal(jobId, await m.Send(new RenewJobLease(user.RequireSelf(agentId), jobId), ct)));

    private static async Task<NoContent> Release(Guid agentId, Guid jobId, ReleaseJobRequest? request, ClaimsPrincipal user, IMediator m, CancellationToken ct)
    {
        await m.Send(new ReleaseJob(user.RequireSelf(agentId), jobId, request?.Reason), ct);
        return TypedResults.NoContent();
    }

    private static async Task<IResult> KeyFile(Guid agentId, ClaimsPrincipal user, DiskStore disk, CancellationToken ct)
    {
        user.RequireSelf(agentId);
        var bytes = await disk.ReadKeyFileAsync(ct)
            ?? throw new NotFoundException("Repository key", RepositoryKey.StreamId);
        return TypedResults.Bytes(bytes, "application/json");
    }

    private static async Task KnownChunks(Guid agentId, HttpContext http, IDocumentSession session, CancellationToken ct)
    {
        http.User.RequireSelf(agentId);
        // Read apart from garbage collection's decisions; chunks of condemned packs are not offered (they may go), so
        // a backup that starts now uploads them again rather than relying on them.
        await CollectionLock.SharedAsync(session, ct);
        var condemned = (await session.Query<CondemnedPack>().Select(p => p.Id).ToListAsync(ct)).ToHashSet(StringComparer.Ordinal);
        var ids = condemned.Count == 0
            ? session.Query<StoredChunk>().Select(c => c.Id).ToAsyncEnumerable(ct)
            : session.Query<StoredChunk>().Select(c => new IndexedChunk(c.Id, c.PackId)).ToAsyncEnumerable(ct)
                .Where(c => !condemned.Contains(c.PackId)).Select(c => c.Id);
        http.Response.ContentType = "application/octet-stream";
        var buffer = new byte[ChunkId.Size * 1024];
        var used = 0;
        await foreach (var id in ids)
        {
            Convert.FromHexString(id, buffer.AsSpan(used, ChunkId.Size), out _, out _);
            used += ChunkId.Size;
            if (used == buffer.Length)
            {
                await http.Response.Body.WriteAsync(buffer, ct);
                used = 0;
            }
        }
        await http.Response.Body.WriteAsync(buffer.AsMemory(0, used), ct);
    }

    /// <summary>One pack of a running job of <paramref name="kind"/>, streamed from the request body (up to the server's pack limit).</summary>
    internal static async Task<Ok<PackStored>> PutPackAsync(
        JobKind kind, Guid agentId, Guid jobId, string packId, HttpContext http, IMediator m, IOptions<ServerOptions> options, CancellationToken ct)
    {
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit) limit.MaxRequestBodySize = options.Value.MaxPackBytes;
        return TypedResults.Ok(await m.Send(new WritePackToDisk(http.User.RequireSelf(agentId), kind, jobId, packId, http.Request.Body), ct));
    }

    internal static async Task<NoContent> FailAsync(JobKind kind, Guid agentId, Guid jobId, FailJobRequest request, ClaimsPrincipal user, IMediator m, CancellationToken ct)
    {
        await m.Send(new FailJob(user.RequireSelf(agentId), kind, jobId, request.Reason ?? ""), ct);
        return TypedResults.NoContent();
    }

    /// <summary>The tree's chunk ids and every chunk id a commit references (tree and files), or a 400 naming the field.</summary>
    internal static (IReadOnlyList<string> Tree, HashSet<string> All) ReferencedChunks(CompleteBackupRequest request)
    {
        var tree = request.Tree ?? [];
        if (tree.Count == 0 || tree.Any(t => !ChunkId.TryParse(t, out _)))
            throw new InvalidDataException("'tree' must list the chunk ids (64 lowercase hex) of the backed-up tree.");
        byte[] raw;
        try
        {
            raw = Convert.FromBase64String(request.Chunks ?? "");
        }
        catch (FormatException)
        {
            throw new InvalidDataException("'chunks' must be base64 of 32-byte chunk ids.");
        }
        if (raw.Length % ChunkId.Size != 0) throw new InvalidDataException("'chunks' must be base64 of 32-byte chunk ids.");
        var ids = new HashSet<string>(tree, StringComparer.Ordinal);
        for (var i = 0; i < raw.Length; i += ChunkId.Size) ids.Add(Convert.ToHexStringLower(raw, i, ChunkId.Size));
        return (tree, ids);
    }
}

internal sealed record IndexedChunk(string Id, string PackId);
