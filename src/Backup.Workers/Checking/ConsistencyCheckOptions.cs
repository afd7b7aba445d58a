namespace Backup.Workers.Checking;

public sealed class ConsistencyCheckOptions
{
    public const string Section = "Backup:ConsistencyCheck";

    /// <summary>How often the worker looks whether today's check is due.</summary>
    public TimeSpan Interval { get; set; } = TimeSpan.FromMinutes(15);

    /// <summary>When (UTC) the daily check of both tiers runs.</summary>
    public TimeOnly TimeOfDay { get; set; } = new(2, 0);
}
