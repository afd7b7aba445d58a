using Backup.Commands.Common;
using FluentValidation;
using Marten;

namespace Backup.Commands.ProtectionGroups;

/// <summary>What every policy edit shares: load the group, check the caller's version, decide, append at that version.</summary>
internal static class PolicyEdits
{
    /// <returns>The stream version after the append: the group's new ETag.</returns>
    public static async ValueTask<long> ApplyAsync(
        IDocumentSession session, Guid groupId, long? expectedVersion, Func<ProtectionGroup?, object> decide, CancellationToken ct)
    {
        var (group, version) = await session.LoadAsync<ProtectionGroup>(groupId, ProtectionGroup.Next, ct);
        if (group is null) throw new NotFoundException("Protection group", groupId);
        if (expectedVersion is { } expected && expected != version) throw Stale(groupId, expected, version);
        var @event = decide(group);
        session.AppendExpected(groupId, version, @event);
        try
        {
            await session.SaveChangesAsync(ct);
        }
        catch (JasperFx.Events.EventStreamUnexpectedMaxEventIdException)
        {
            // Someone appended between our load and our save: the caller's version is stale too.
            throw new PreconditionFailedException(
                $"Protection group {groupId} changed while this edit was being made; fetch it again and retry.", version + 1);
        }
        return version + 1;
    }

    private static PreconditionFailedException Stale(Guid groupId, long expected, long current) =>
        new($"Protection group {groupId} is at version {current}, not {expected}; fetch it again and retry.", current);
}

internal static class PolicyRules
{
    public static IRuleBuilderOptions<T, long?> ValidExpectedVersion<T>(this IRuleBuilder<T, long?> rule) =>
        rule.GreaterThanOrEqualTo(1).WithMessage("'{PropertyName}' must be a version of the group (1 or more).");

    /// <summary>Times of day on whole minutes: schedules are kept to the minute.</summary>
    public static IRuleBuilderOptions<T, IReadOnlyList<TimeOnly>?> DistinctWholeMinutes<T>(this IRuleBuilder<T, IReadOnlyList<TimeOnly>?> rule) =>
        rule.Must(times => times is null || times.Distinct().Count() == times.Count)
            .WithMessage("'{PropertyName}' must not list the same time twice.");

    public static IRuleBuilderOptions<T, TimeOnly> WholeMinute<T>(this IRuleBuilder<T, TimeOnly> rule) =>
        rule.Must(t => t.Second == 0 && t.Millisecond == 0 && t.Microsecond == 0 && t.Nanosecond == 0)
            .WithMessage("'{PropertyName}' must be a whole minute (hh:mm).");

    public static IRuleBuilderOptions<T, IReadOnlyList<DayOfWeek>?> DistinctDays<T>(this IRuleBuilder<T, IReadOnlyList<DayOfWeek>?> rule) =>
        rule.Must(days => days is null || days.Distinct().Count() == days.Count)
            .WithMessage("'{PropertyName}' must not list the same day twice.");
}
