namespace Backup.UnitTests.Support;

internal static class Clock
{
    public static readonly DateTimeOffset Now = new(2025, 3, 14, 9, 26, 53, TimeSpan.Zero);
}
