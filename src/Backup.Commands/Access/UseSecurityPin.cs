using Backup.Commands.Common;
using Marten;
using Mediator;

namespace Backup.Commands.Access;

/// <summary>
/// Spends a security PIN on a destructive operation. The use is appended to the request's session but not saved: the
/// guarded command saves it in its own transaction, so a PIN is spent exactly when the operation happens, and a
/// refused operation (404, 409) leaves it usable. Two requests racing with one PIN: the second save fails on the PIN
/// stream's expected version.
/// </summary>
public sealed record UseSecurityPin(string Pin, string Operation) : ICommand;

public sealed class UseSecurityPinHandler(IDocumentSession session, TimeProvider clock) : ICommandHandler<UseSecurityPin>
{
    public async ValueTask<Unit> Handle(UseSecurityPin command, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        // Expired PINs stay candidates for a while so that a late caller hears "expired" rather than "not valid".
        var since = now - SecurityPin.ValidFor - TimeSpan.FromHours(1);
        var candidates = await session.Query<RecentSecurityPin>().Where(p => p.ExpiresAt > since).Select(p => p.Id).ToListAsync(ct);
        foreach (var id in candidates)
        {
            var (pin, version) = await session.LoadAsync<SecurityPin>(id, SecurityPin.Next, ct);
            if (pin is null || !pin.Matches(command.Pin)) continue;
            session.AppendExpected(id, version, SecurityPin.Use(pin, command.Pin, command.Operation, now));
            return Unit.Value;
        }
        SecurityPin.Use(null, command.Pin, command.Operation, now);
        return Unit.Value;
    }
}
