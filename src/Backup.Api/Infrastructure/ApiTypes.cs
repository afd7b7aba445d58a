namespace Backup.Api.Infrastructure;

// Response shapes every resource shares (a list's page is the read side's Backup.Projections.Page<T>).

/// <summary>The id of what a request created or queued, beside its Location.</summary>
public sealed record IdResponse(Guid Id);
