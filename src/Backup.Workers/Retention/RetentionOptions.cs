namespace Backup.Workers.Retention;

public sealed class RetentionOptions
{
    public const string Section = "Backup:Retention";

    /// <summary>How often the retention worker looks for recovery points the policies no longer keep.</summary>
    public TimeSpan Interval { get; set; } = TimeSpan.FromHours(1);
}
