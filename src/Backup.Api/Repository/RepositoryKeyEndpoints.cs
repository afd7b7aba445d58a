using System.Security.Cryptography;
using Backup.Api.Infrastructure;
using Backup.Commands.Common;
using Backup.Commands.Repository;
using Backup.Storage.Contracts;
using Backup.Storage.Crypto;
using Backup.Storage.Disk;
using Backup.Storage.Vault;
using Marten;
using Mediator;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Backup.Api.Repository;

/// <summary>What the server says of its key: never the key, only that it exists, its hash and its cost.</summary>
public sealed record RepositoryKeyResponse(string KeyFileSha256, string Kdf, int MemoryKiB, int Passes, int PassphraseChanges);

/// <summary>
/// The repository's encryption key: created once with a passphrase, re-wrapped when the passphrase changes. The key
/// file (master keys wrapped under the passphrase) is kept on the server's disk and in the vault; agents fetch it and
/// unwrap it with the passphrase they are configured with, so data is encrypted before it leaves the protected machine.
/// </summary>
public static class RepositoryKeyEndpoints
{
    public static IEndpointRouteBuilder MapRepositoryKey(this IEndpointRouteBuilder app)
    {
        var key = app.MapGroup("/api/repository/key").WithTags("Repository key");
        key.MapPut("/", Create)
            .WithSummary("Create the repository's encryption key, protected by a passphrase")
            .WithDescription("Once per server: 409 if a key exists. The passphrase needs 16 characters or more (400 otherwise); keep it safe, "
                + "it is the only way to restore from the vault. The key file is stored on the server's disk and in the vault.")
            .ProducesProblem(StatusCodes.Status409Conflict)
            .RequireAuthorization(AccessPolicies.Admin);
        key.MapGet("/", Get).WithETag().WithSummary("Whether the repository has a key, with its key file's hash and cost (never the key)")
            .RequireAuthorization(AccessPolicies.Read);
        key.MapPost("/passphrase", ChangePassphrase)
            .WithSummary("Change the passphrase; no stored data is rewritten")
            .WithDescription("Destructive (an agent left with the old passphrase can no longer back up): needs a security PIN in X-Security-Pin. "
                + "422 when the current passphrase is wrong (nothing changed); 404 when there is no key yet; 409 when another request changed it at the same time.")
            .ProducesProblem(StatusCodes.Status409Conflict).ProducesProblem(StatusCodes.Status422UnprocessableEntity)
            .RequireAuthorization(AccessPolicies.Admin)
            .RequireSecurityPin("change-passphrase");
        return app;
    }

    private static async Task<Created<RepositoryKeyResponse>> Create(CreateRepositoryKeyRequest request, IMediator m, CancellationToken ct)
    {
        var written = await m.Send(new CreateRepositoryKey(request.Passphrase ?? ""), ct);
        return TypedResults.Created("/api/repository/key", new RepositoryKeyResponse(written.Sha256, written.Kdf, written.MemoryKiB, written.Passes, 0));
    }

    private static async Task<Results<Ok<RepositoryKeyResponse>, NotFound>> Get(IQuerySession session, DiskStore disk, CancellationToken ct)
    {
        var (state, _) = await session.LoadAsync<RepositoryKey>(RepositoryKey.StreamId, RepositoryKey.Next, ct);
        var bytes = await disk.ReadKeyFileAsync(ct);
        if (state is null || bytes is null) return TypedResults.NotFound();
        var file = KeyFile.FromJson(bytes);
        return TypedResults.Ok(new RepositoryKeyResponse(state.KeyFileSha256, file.Kdf.Algorithm, (int)file.Kdf.MemoryKiB, (int)file.Kdf.Passes, state.PassphraseChanges));
    }

    private static async Task<Ok<RepositoryKeyResponse>> ChangePassphrase(ChangePassphraseRequest request, IMediator m, IQuerySession session, CancellationToken ct)
    {
        var written = await m.Send(new ChangeRepositoryPassphrase(request.CurrentPassphrase ?? "", request.NewPassphrase ?? ""), ct);
        var (state, _) = await session.LoadAsync<RepositoryKey>(RepositoryKey.StreamId, RepositoryKey.Next, ct);
        return TypedResults.Ok(new RepositoryKeyResponse(written.Sha256, written.Kdf, written.MemoryKiB, written.Passes, state?.PassphraseChanges ?? 0));
    }
}
