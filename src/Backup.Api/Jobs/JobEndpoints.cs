using Backup.Api.Infrastructure;
using Backup.Projections;
using Backup.Projections.Jobs;
using Backup.Storage.Contracts;
using Mediator;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Backup.Api.Jobs;

public static class JobEndpoints
{
    public static IEndpointRouteBuilder MapJobs(this IEndpointRouteBuilder app)
    {
        var jobs = app.MapGroup("/api/jobs").WithTags("Jobs").RequireAuthorization(AccessPolicies.Read).ReadsYourWrites(nameof(JobView));
        jobs.MapGet("/", List)
            .WithSummary("Job history, newest first: backups, synchronisations, vault copies, restores, consistency checks and retention expiries")
            .WithDescription("Each job with its state (Requested, Running, Succeeded, Failed), recovery point (none for a synchronisation), data source, group and agent, "
                + "requested / started / finished times, duration, bytes and failure reason. Filters: kind (Backup, Synchronisation, VaultCopy, "
                + "Restore, ConsistencyCheck, Retention), state, dataSourceId, groupId, agentId, from (inclusive) / to (exclusive) on the request time. "
                + "limit 1–500 (default 50); pass the returned nextAfter as after for the next page. Bad values are a 400 naming the parameter.")
            .ProducesValidationProblem();
        jobs.MapGet("/{jobId:guid}", Get).WithETag()
            .WithSummary("Get one job")
            .WithDescription("A backup's job id is its recovery point's id, a restore's its restore id; 404 when no job has this id.")
            .ProducesProblem(StatusCodes.Status404NotFound);
        return app;
    }

    private static async Task<Ok<JobPage>> List(
        JobKind? kind, JobState? state, Guid? dataSourceId, Guid? groupId, Guid? agentId, DateTimeOffset? from, DateTimeOffset? to,
        string? after, int? limit, IMediator m, CancellationToken ct) =>
        TypedResults.Ok(await m.Send(new ListJobs(kind, state, dataSourceId, groupId, agentId, from, to, after, limit ?? 50), ct));

    private static async Task<Results<Ok<JobView>, NotFound>> Get(Guid jobId, IMediator m, CancellationToken ct) =>
        await m.Send(new GetJob(jobId), ct) is { } job ? TypedResults.Ok(job) : TypedResults.NotFound();
}
