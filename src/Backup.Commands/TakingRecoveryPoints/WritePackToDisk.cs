using Backup.Commands.Common;
using Backup.Commands.RecoveryPoints;
using FluentValidation;
using Marten;
using Mediator;

namespace Backup.Commands.TakingRecoveryPoints;

/// <summary>
/// An agent delivers one pack of a running backup. <see cref="Write"/> puts the bytes on the server's disk
/// (verifying them) and returns their length; it runs only once the backup is known to be this agent's and running.
/// </summary>
public sealed record WritePackToDisk(Guid AgentId, Guid RecoveryPointId, string PackId, int ChunkCount, Func<CancellationToken, Task<long>> Write)
    : ICommand<long>;

public sealed class WritePackToDiskValidator : AbstractValidator<WritePackToDisk>
{
    public WritePackToDiskValidator()
    {
        RuleFor(x => x.PackId).Matches("^[0-9a-f]{64}$").WithMessage("'PackId' must be the 64-character lowercase hex SHA-256 of the pack.");
        RuleFor(x => x.ChunkCount).GreaterThan(0);
    }
}

public sealed class WritePackToDiskHandler(IDocumentSession session, TimeProvider clock) : ICommandHandler<WritePackToDisk, long>
{
    public async ValueTask<long> Handle(WritePackToDisk command, CancellationToken ct)
    {
        var (rp, _) = await session.LoadAsync<RecoveryPoint>(command.RecoveryPointId, RecoveryPoint.Next, ct);
        // Guard before touching the disk: an agent that does not own this running backup writes nothing.
        RecoveryPoint.RecordPack(rp, command.RecoveryPointId, command.AgentId, command.PackId, 0, 0, clock.GetUtcNow());
        var bytes = await command.Write(ct);
        var written = RecoveryPoint.RecordPack(rp, command.RecoveryPointId, command.AgentId, command.PackId, bytes, command.ChunkCount, clock.GetUtcNow());
        if (written is null) return bytes;
        session.Events.Append(command.RecoveryPointId, written);
        await session.SaveChangesAsync(ct);
        return bytes;
    }
}
