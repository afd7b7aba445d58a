using System.Security.Cryptography;
using Backup.Commands.Common;
using Marten.Events.Aggregation;

namespace Backup.Commands.Access;

/// <summary>The PIN itself is never in an event, only a hash salted with the PIN's id.</summary>
public sealed record SecurityPinIssued(Guid PinId, string PinHash, DateTimeOffset ExpiresAt, DateTimeOffset IssuedAt);

public sealed record SecurityPinUsed(Guid PinId, string Operation, DateTimeOffset UsedAt);

/// <summary>
/// A short-lived, single-use second factor for destructive operations (Azure Backup's security PIN): an admin asks for
/// one, and a destructive request must carry it within its validity.
/// </summary>
public sealed record SecurityPin(Guid Id, string PinHash, DateTimeOffset ExpiresAt, bool Used)
{
    public const string Header = "X-Security-Pin";
    public static readonly TimeSpan ValidFor = TimeSpan.FromMinutes(5);

    public static SecurityPin? Next(SecurityPin? state, object @event) => @event switch
    {
        SecurityPinIssued e => new SecurityPin(e.PinId, e.PinHash, e.ExpiresAt, false),
        SecurityPinUsed when state is not null => state with { Used = true },
        _ => state,
    };

    public static string NewPin() => RandomNumberGenerator.GetInt32(0, 100_000_000).ToString("D8", System.Globalization.CultureInfo.InvariantCulture);

    public static string HashOf(Guid pinId, string pin) => Secrets.Hash($"{pinId:N}.{pin}");

    public static SecurityPinIssued Issue(Guid pinId, string pin, DateTimeOffset now) => new(pinId, HashOf(pinId, pin), now + ValidFor, now);

    public bool Matches(string pin) => Secrets.Matches($"{Id:N}.{pin}", PinHash);

    /// <summary>Single use, within its validity; every refusal names the header so the caller knows what to fix.</summary>
    public static SecurityPinUsed Use(SecurityPin? pin, string presented, string operation, DateTimeOffset now)
    {
        if (pin is null || !pin.Matches(presented))
            throw new ForbiddenException($"The security PIN ({Header}) is not valid.");
        if (pin.Used)
            throw new ForbiddenException($"The security PIN ({Header}) has already been used.");
        if (now > pin.ExpiresAt)
            throw new ForbiddenException($"The security PIN ({Header}) has expired.");
        return new SecurityPinUsed(pin.Id, operation, now);
    }
}

/// <summary>Command-side lookup: the caller presents only the PIN, so recent PINs are found here and matched by hash.</summary>
public sealed class RecentSecurityPin
{
    public Guid Id { get; set; }
    public DateTimeOffset ExpiresAt { get; set; }
}

public sealed partial class RecentSecurityPinProjection : SingleStreamProjection<RecentSecurityPin, Guid>
{
    public static RecentSecurityPin Create(SecurityPinIssued e) => new() { Id = e.PinId, ExpiresAt = e.ExpiresAt };
}
