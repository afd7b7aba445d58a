using Backup.Commands.Common;
using Backup.Commands.Uniqueness;
using FluentValidation;
using Marten;
using Mediator;

namespace Backup.Commands.ProtectionGroups;

public sealed record CreateProtectionGroup(string Name) : ICommand<Guid>;

public sealed class CreateProtectionGroupValidator : AbstractValidator<CreateProtectionGroup>
{
    public CreateProtectionGroupValidator() =>
        RuleFor(x => x.Name).NotEmpty().Must(n => n.Trim().Length > 0).WithMessage("'Name' must not be blank.").MaximumLength(200);
}

public sealed class CreateProtectionGroupHandler(IDocumentSession session, TimeProvider clock) : ICommandHandler<CreateProtectionGroup, Guid>
{
    public async ValueTask<Guid> Handle(CreateProtectionGroup command, CancellationToken ct)
    {
        var key = ProtectionGroupName.KeyOf(command.Name);
        if (await session.Query<ProtectionGroupName>().AnyAsync(n => n.NameKey == key, ct))
            throw new ConflictException($"A protection group named '{command.Name.Trim()}' already exists.");
        var id = Guid.CreateVersion7();
        session.Events.StartStream<ProtectionGroup>(id, ProtectionGroup.Create(id, command.Name, clock.GetUtcNow()));
        try
        {
            await session.SaveChangesAsync(ct);
        }
        catch (Exception e) when (e.IsUniqueViolation())
        {
            // Lost a race with another request for the same name (unique index on ProtectionGroupName.NameKey).
            throw new ConflictException($"A protection group named '{command.Name.Trim()}' already exists.");
        }
        return id;
    }
}
